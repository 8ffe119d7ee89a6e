"""``landcover bench quality``: the training recipe on real DeepGlobe scenes, against baselines.

A **smoke check of the recipe, not a claim about DeepGlobe quality**: a handful of scenes
(``../shared/deepglobe-sample``, 4 × 2448², 50 cm), a few CPU minutes per model. For each fold
one scene is held out and the others train (rotating, so every scene is held out once); each
architecture is trained with the CPU preset (``TrainConfig.from_preset("cpu")``: random crops
for training, whole 612² patches for validation) and scored on the held-out scene's 16 whole
patches. Two baselines are computed on the same pixels from the same training scenes:

- **majority**: every pixel is the most frequent (active) class of the training pixels;
- **rgb-mean**: each pixel gets the class whose mean training RGB is nearest (a per-pixel colour
  classifier; on DeepGlobe colour alone separates water and forest from agriculture fairly well).

Scores: per-class IoU and mIoU (``pipelines.core.metrics``, the challenge's definition) from
the confusion matrices summed over the folds, plus the mIoU of each fold. The model's score is
its **last** epoch's (its history's ``val_confusion``), not the best epoch's, because the
held-out scene is also its validation split: choosing the epoch on it would peek at the test.

Each fold's dataset is written here, in process (same patch grid, record encoding, manifest
and class-pixel counts as ``landcover preprocess``, without Beam), because the split must be a
chosen scene, not the preprocess job's hash split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.core import metrics
from pipelines.core.baselines import class_rgb_means, majority_class, nearest_mean_prediction
from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, class_pixel_counts

DEFAULT_SCENES = Path(__file__).resolve().parents[2] / ".." / "shared" / "deepglobe-sample"
PATCH = 612
BASELINES: tuple[str, ...] = ("majority", "rgb-mean")


@dataclass(frozen=True)
class Scene:
    scene_id: str
    image: np.ndarray  # (H, W, 3) uint8
    ids: np.ndarray  # (H, W) uint8 class ids


def load_scenes(folder: str) -> list[Scene]:
    """Every ``{id}_sat.jpg`` + ``{id}_mask.png`` pair under ``folder``, sorted by id."""
    from pipelines.io.imaging import decode_image_bytes, decode_mask_bytes

    scenes = []
    for image_path in sorted(Path(folder).glob("*_sat.jpg")):
        scene_id = image_path.name[: -len("_sat.jpg")]
        mask_path = image_path.with_name(f"{scene_id}_mask.png")
        if not mask_path.exists():
            continue
        image = decode_image_bytes(image_path.read_bytes(), str(image_path))
        ids = decode_mask_bytes(mask_path.read_bytes(), str(mask_path))
        scenes.append(Scene(scene_id, image, ids))
    if len(scenes) < 2:
        raise FileNotFoundError(
            f"need at least 2 labelled scenes under {folder}, found {len(scenes)}"
        )
    return scenes


# ---- baselines ---------------------------------------------------------------------------------


def baseline_confusions(train: Sequence[Scene], held_out: Scene) -> dict[str, np.ndarray]:
    """Confusion matrices of both baselines on the held-out scene."""
    pairs = [(s.image, s.ids) for s in train]
    majority = np.full(held_out.ids.shape, majority_class([ids for _, ids in pairs]), np.uint8)
    rgb = nearest_mean_prediction(held_out.image, class_rgb_means(pairs))
    return {
        "majority": metrics.confusion_matrix(held_out.ids, majority),
        "rgb-mean": metrics.confusion_matrix(held_out.ids, rgb),
    }


# ---- a fold's dataset --------------------------------------------------------------------------


def write_fold_dataset(train: Sequence[Scene], held_out: Scene, out: str, patch: int) -> str:
    """Records of ``train`` (train split) and ``held_out`` (val split) + manifest under ``out``."""
    import tensorflow as tf

    from pipelines.core.manifest import Manifest
    from pipelines.core.records import RecordFormat
    from pipelines.core.tiling import patch_grid
    from pipelines.io.records import encode_patch, shard_info, write_manifest

    fmt = RecordFormat()
    os.makedirs(out, exist_ok=True)
    splits = {"train": list(train), "val": [held_out]}
    patches: dict[str, int] = {}
    pixels: dict[str, list[int]] = {}
    files: dict[str, list[str]] = {}
    for split, scenes in splits.items():
        name = os.path.join(out, f"{split}-00000-of-00001.tfrecord")
        count = 0
        with tf.io.TFRecordWriter(name) as writer:
            for scene in scenes:
                height, width = scene.ids.shape
                for y, x in patch_grid(height, width, patch):
                    window = (slice(y, y + patch), slice(x, x + patch))
                    writer.write(
                        encode_patch(
                            scene.scene_id, y, x, scene.image[window], scene.ids[window], fmt
                        )
                    )
                    count += 1
        patches[split] = count
        pixels[split] = [
            int(n) for n in np.sum([class_pixel_counts(s.ids) for s in scenes], axis=0)
        ]
        files[split] = [name]
    manifest = Manifest.build(
        patch_size=patch,
        record_format=fmt,
        scene_ids={split: [s.scene_id for s in scenes] for split, scenes in splits.items()},
        patches=patches,
        class_pixels_by_split=pixels,
        files=files,
        # counted and checksummed as preprocess does: training verifies shards against them
        shards={n: shard_info(n, fmt.compression) for names in files.values() for n in names},
        options={"writer": "landcover bench quality"},
    )
    write_manifest(out, manifest)
    return out


# ---- training ----------------------------------------------------------------------------------


def train_fold(arch: str, data: str, output: str, options: dict[str, Any]) -> dict[str, Any]:
    """Train ``arch`` with the CPU preset on a fold; returns its last epoch's confusion + time."""
    from models.train.config import TrainConfig
    from models.train.loop import train

    config = TrainConfig.from_preset("cpu", data=data, output=output, arch=arch, **options)
    started = time.perf_counter()
    metadata = train(config)
    last = metadata["history"][-1]
    return {
        "confusion": np.asarray(last["val_confusion"], np.int64),
        "seconds": time.perf_counter() - started,
        "best_epoch": metadata["best_epoch"],
        "epochs": len(metadata["history"]),
    }


# ---- report ------------------------------------------------------------------------------------


def score(cm: np.ndarray) -> dict[str, Any]:
    iou = metrics.iou_from_confusion(cm)
    return {
        "miou": metrics.miou_from_confusion(cm),
        "pixel_accuracy": metrics.pixel_accuracy(cm),
        "per_class_iou": {CLASS_NAMES[c]: float(iou[c]) for c in ACTIVE_CLASSES},
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """Per-class IoU (rows) × method (columns), then mIoU over the pooled folds and per fold."""

    def cell(value: float | None) -> str:
        return f"{'n/a':>12}" if value is None or np.isnan(value) else f"{value:>12.3f}"

    methods = list(results)
    lines = [f"{'class IoU':<14}" + "".join(f"{m:>12}" for m in methods)]
    for c in ACTIVE_CLASSES:
        name = CLASS_NAMES[c]
        lines.append(
            f"{name:<14}" + "".join(cell(results[m]["per_class_iou"][name]) for m in methods)
        )
    lines.append(f"{'mIoU (pooled)':<14}" + "".join(cell(results[m]["miou"]) for m in methods))
    lines.append(
        f"{'pixel acc.':<14}" + "".join(cell(results[m]["pixel_accuracy"]) for m in methods)
    )
    folds = len(next(iter(results.values()))["fold_miou"])
    for k in range(folds):
        lines.append(
            f"{'mIoU fold ' + str(k + 1):<14}"
            + "".join(cell(results[m]["fold_miou"][k]) for m in methods)
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench quality",
        description="Smoke check of the training recipe on real scenes (not a DeepGlobe "
        "quality claim): each architecture, CPU preset, one scene held out per fold (rotating), "
        "per-class IoU and mIoU vs a majority-class and a nearest-RGB-mean baseline.",
    )
    parser.add_argument("--scenes", default=str(DEFAULT_SCENES), help="folder of labelled scenes")
    parser.add_argument("--output", default=".work/bench-quality", help="work folder + results")
    parser.add_argument("--archs", default=None, help="comma-separated; default: all")
    parser.add_argument("--folds", type=int, default=None, help="default: one per scene")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps-per-epoch", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--loss", default="dice")
    parser.add_argument("--class-weights", default="none")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from models.train.cli import log_progress_to_stderr

    log_progress_to_stderr()
    from models.registry import ARCHITECTURES

    archs = args.archs.split(",") if args.archs else list(ARCHITECTURES)
    started = time.perf_counter()
    scenes = load_scenes(args.scenes)
    folds = min(args.folds or len(scenes), len(scenes))
    options = {
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "learning_rate": args.learning_rate,
        "loss": args.loss,
        "class_weights": args.class_weights,
        "seed": args.seed,
        "deterministic": True,
        "log_every": max(1, args.steps_per_epoch // 2),
        "checkpoint_every": 10_000,
    }
    print(
        f"bench quality: {len(scenes)} scenes ({', '.join(s.scene_id for s in scenes)}), "
        f"{folds} folds, archs {archs}, CPU preset + {options}; {os.cpu_count()} CPUs",
        flush=True,
    )
    confusions: dict[str, list[np.ndarray]] = {m: [] for m in [*archs, *BASELINES]}
    seconds: dict[str, float] = {m: 0.0 for m in archs}
    for k in range(folds):
        held_out = scenes[k]
        train = [s for i, s in enumerate(scenes) if i != k]
        for name, cm in baseline_confusions(train, held_out).items():
            confusions[name].append(cm)
        data = write_fold_dataset(
            train, held_out, os.path.join(args.output, f"fold{k + 1}", "records"), PATCH
        )
        for arch in archs:
            output = os.path.join(args.output, f"fold{k + 1}", arch)
            result = train_fold(arch, data, output, {**options, "fresh": True})
            confusions[arch].append(result["confusion"])
            seconds[arch] += result["seconds"]
            print(
                f"fold {k + 1}/{folds} (held out {held_out.scene_id}) {arch}: mIoU "
                f"{metrics.miou_from_confusion(result['confusion']):.3f} "
                f"(rgb-mean {metrics.miou_from_confusion(confusions['rgb-mean'][-1]):.3f}, "
                f"majority {metrics.miou_from_confusion(confusions['majority'][-1]):.3f}) "
                f"in {result['seconds']:.0f}s",
                flush=True,
            )
    results = {
        m: {
            **score(np.sum(cms, axis=0)),
            "fold_miou": [metrics.miou_from_confusion(cm) for cm in cms],
            **({"train_seconds": round(seconds[m], 1)} if m in seconds else {}),
        }
        for m, cms in confusions.items()
    }
    total = time.perf_counter() - started
    print("\n" + table(results))
    print(f"\ntotal {total:.0f}s ({total / 60:.1f} min) on {os.cpu_count()} CPUs")
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "quality.json"), "w") as handle:
        json.dump(
            {"options": options, "folds": folds, "results": results, "seconds": total},
            handle,
            indent=2,
        )
    return 0
