"""``landcover bench input``: patches/s of the tf.data input vs a seed-style Python loader.

Both produce the same thing, batches of normalised float32 612² images and float32 one-hot
masks, on the same machine in the same run:

- **tf.data** (``models.input.make_input``): preprocessed TFRecord shards, interleaved reads,
  parallel parse, augmentation, batch-level normalisation and one-hot, prefetch.
- **seed-style**: what a first notebook does: for every batch, open the scene files with PIL
  (JPEG image, PNG mask), turn the RGB mask into class ids and then into a float32 one-hot,
  one class at a time in a Python loop, cut the patches and normalise. Each scene a batch needs
  is decoded once per batch (not once per patch), which is already kinder than the worst case.

Without ``--records``/``--scenes-dir`` it writes synthetic scenes (``pipelines.synth``) and runs
``pipelines.preprocess.job`` on them in a temporary folder first (not timed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from pipelines.core.palette import BINARIZE_THRESHOLD, CLASS_COLORS, NUM_CLASSES, UNKNOWN


def seed_style_batch(
    scenes: Sequence[tuple[str, str]], picks: Sequence[tuple[int, int, int]], patch: int
) -> tuple[np.ndarray, np.ndarray]:
    """One batch the seed way: decode the scenes with PIL, one-hot in a Python loop, cut."""
    import io

    from PIL import Image

    from pipelines.io import storage  # Beam: only when running

    images, masks = [], []
    for scene_index in sorted({scene for scene, _, _ in picks}):
        image_uri, mask_uri = scenes[scene_index]
        with Image.open(io.BytesIO(storage.read_bytes(image_uri))) as img:
            image = np.asarray(img.convert("RGB"))
        with Image.open(io.BytesIO(storage.read_bytes(mask_uri))) as img:
            rgb = np.asarray(img.convert("RGB"))
        binary = (rgb >= BINARIZE_THRESHOLD).astype(np.uint8) * 255
        ids = np.full(rgb.shape[:2], UNKNOWN, np.uint8)
        for class_id, color in enumerate(CLASS_COLORS):
            ids[np.all(binary == color, axis=-1)] = class_id
        one_hot = np.zeros((*ids.shape, NUM_CLASSES), np.float32)
        for class_id in range(NUM_CLASSES):
            one_hot[..., class_id] = (ids == class_id).astype(np.float32)
        for scene, y, x in picks:
            if scene == scene_index:
                images.append(image[y : y + patch, x : x + patch].astype(np.float32) / 255.0)
                masks.append(one_hot[y : y + patch, x : x + patch])
    return np.stack(images), np.stack(masks)


def bench_seed_style(
    scenes_uri: str, patch: int, batch_size: int, batches: int, seed: int = 0
) -> float:
    """Patches/s of :func:`seed_style_batch` over ``batches`` batches of random patches."""
    import io

    from PIL import Image

    from pipelines.io import storage  # Beam: only when running

    image_uris = storage.match_in(scenes_uri, "*_sat.jpg")
    scenes = [(uri, uri[: -len("_sat.jpg")] + "_mask.png") for uri in image_uris]
    if not scenes:
        raise FileNotFoundError(f"no *_sat.jpg scenes under {scenes_uri}")
    with Image.open(io.BytesIO(storage.read_bytes(scenes[0][0]))) as img:
        width, height = img.size
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(batches):
        picks = [
            (
                int(rng.integers(len(scenes))),
                int(rng.integers(height - patch + 1)),
                int(rng.integers(width - patch + 1)),
            )
            for _ in range(batch_size)
        ]
        images, masks = seed_style_batch(scenes, picks, patch)
        assert images.shape == (batch_size, patch, patch, 3) and masks.shape[-1] == NUM_CLASSES
    return batches * batch_size / (time.perf_counter() - start)


def bench_tf_data(
    records_uri: str, batch_size: int, batches: int, warmup: int = 3, augment: bool = True
) -> tuple[float, int]:
    """Patches/s of the training input (warm-up batches excluded); returns (rate, patch size)."""
    from models.input import InputConfig, make_input

    dataset = make_input(records_uri, "train", InputConfig(batch_size=batch_size, augment=augment))
    iterator = iter(dataset)
    for _ in range(warmup):
        images, _ = next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        images, masks = next(iterator)
        # Touch the values so nothing is left lazily undone.
        _ = float(images[0, 0, 0, 0]) + float(masks[0, 0, 0, 0])
    return batches * batch_size / (time.perf_counter() - start), int(images.shape[1])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench input",
        description="patches/s of the tf.data training input vs a seed-style PIL + NumPy loader",
    )
    parser.add_argument(
        "--scenes-dir", help="scenes ({id}_sat.jpg + {id}_mask.png); default: synth"
    )
    parser.add_argument("--records", help="records of those scenes; default: preprocess them")
    parser.add_argument("--scenes", type=int, default=4, help="synthetic scenes to write")
    parser.add_argument("--scene-size", type=int, default=2448)
    parser.add_argument("--patch-size", type=int, default=612)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=20, help="timed tf.data batches")
    parser.add_argument("--seed-batches", type=int, default=3, help="timed seed-style batches")
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="landcover-bench-input-") as tmp:
        scenes_uri = args.scenes_dir
        if scenes_uri is None:
            from pipelines.synth import write_scenes

            scenes_uri = os.path.join(tmp, "raw")
            print(f"writing {args.scenes} synthetic {args.scene_size}px scenes…", flush=True)
            write_scenes(scenes_uri, args.scenes, size=args.scene_size, seed=0)
        records_uri = args.records
        if records_uri is None:
            from pipelines.preprocess.job import run_preprocess

            records_uri = os.path.join(tmp, "records")
            print(f"preprocessing into {args.patch_size}px patches…", flush=True)
            run_preprocess(scenes_uri, records_uri, patch_size=args.patch_size, val_fraction=0.0)
        fast, patch = bench_tf_data(
            records_uri, args.batch_size, args.batches, augment=args.augment
        )
        slow = bench_seed_style(scenes_uri, patch, args.batch_size, args.seed_batches)
    print(
        f"tf.data input:     {fast:8.1f} patches/s  ({args.batches} batches of {args.batch_size})"
    )
    print(f"seed-style loader: {slow:8.1f} patches/s  ({args.seed_batches} batches)")
    print(f"speed-up: {fast / slow:.1f}x (target >= 10x), {patch}px patches, {os.cpu_count()} CPUs")
    result = {
        "tf_data_patches_per_s": round(fast, 2),
        "seed_style_patches_per_s": round(slow, 2),
        "ratio": round(fast / slow, 2),
        "patch_size": patch,
        "batch_size": args.batch_size,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result))
    return 0
