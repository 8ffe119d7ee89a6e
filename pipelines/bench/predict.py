"""``landcover bench predict``: scenes/minute of batch inference and the share outside the model.

Runs the real job (``run_predict``: Beam, RunInference, stitching, PNG writes) on synthetic
2448×2448 scenes with an untrained model of the chosen architecture (weights do not change the
arithmetic). The handler counts the seconds spent in the forward pass alone; everything else in
the wall time is overhead: pipeline start-up, model loading, decoding, tiling, batching,
shuffling tiles to their scene, stitching, PNG encoding and writes. Target: overhead ≤ 25%.

To say where the overhead goes, the per-scene steps are also timed one by one outside Beam on
the first scene (decode, tiling, normalisation, stitching, mask encoding and write).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.core.tiling import TILE_OVERLAP, TILE_SIZE

SCENE_SIZE = 2448


def _stage_timings(scene_uri: str, output_dir: str, tile: int, overlap: int) -> dict[str, float]:
    """Seconds per step for one scene, outside Beam (the model replaced by random tiles)."""
    from models.normalization import normalize_image
    from pipelines.core import tiling
    from pipelines.core.palette import NUM_CLASSES, encode_mask
    from pipelines.io import storage
    from pipelines.io.scenes import decode_scene
    from pipelines.predict.outputs import encode_mask_png

    timings: dict[str, float] = {}
    start = time.perf_counter()
    image = decode_scene(storage.read_bytes(scene_uri), scene_uri)
    timings["read+decode"] = time.perf_counter() - start
    start = time.perf_counter()
    tiles = tiling.cut_tiles(image, tile, overlap)
    timings["tiling"] = time.perf_counter() - start
    start = time.perf_counter()
    for i in range(0, len(tiles), 4):
        normalize_image(np.stack(tiles[i : i + 4]))
    timings["normalise"] = time.perf_counter() - start
    rng = np.random.default_rng(0)
    fake = rng.random((tile, tile, NUM_CLASSES), dtype=np.float32)
    start = time.perf_counter()
    height, width = image.shape[:2]
    blender = tiling.TileBlender(height, width, tile, overlap, NUM_CLASSES)
    for index in range(len(tiles)):
        blender.add(index, fake)
    class_ids = blender.class_ids()
    timings["stitch+argmax"] = time.perf_counter() - start
    start = time.perf_counter()
    data = encode_mask_png(encode_mask(class_ids))
    storage.write_bytes(os.path.join(output_dir, "timing_mask.png"), data)
    timings["encode+write mask"] = time.perf_counter() - start
    return timings


def run_bench(
    scenes: int = 1,
    arch: str = "unet",
    base_filters: int = 64,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = 4,
    size: int = SCENE_SIZE,
    workdir: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark; returns the figures it prints."""
    from models.architectures import build_model
    from pipelines import synth
    from pipelines.core import tiling
    from pipelines.predict.job import run_predict

    with tempfile.TemporaryDirectory(prefix="landcover-bench-", dir=workdir) as tmp:
        inputs, outputs = os.path.join(tmp, "scenes"), os.path.join(tmp, "predictions")
        synth.write_scenes(inputs, scenes, size=size, seed=0, labeled=False)
        model = build_model(arch, base_filters=base_filters)
        model_file = os.path.join(tmp, "model.keras")
        model.save(model_file)
        params = int(model.count_params())
        model_mb = os.path.getsize(model_file) / 2**20
        del model
        summary = run_predict(
            model_file, inputs, outputs, tile=tile, overlap=overlap, batch_size=batch_size
        )
        first_scene = sorted(f for f in os.listdir(inputs) if f.endswith("_sat.jpg"))[0]
        stages = _stage_timings(os.path.join(inputs, first_scene), tmp, tile, overlap)
    timings = summary["timings"]
    wall, forward, load = timings["wall_s"], timings["forward_s"], timings["model_load_s"]
    tiles_per_scene = len(tiling.tile_grid(size, size, tile, overlap))
    return {
        "scenes": scenes,
        "predicted": summary["predicted"],
        "scene_size": size,
        "arch": arch,
        "base_filters": base_filters,
        "params": params,
        "model_mb": round(model_mb, 1),
        "tile": tile,
        "overlap": overlap,
        "batch_size": batch_size,
        "tiles_per_scene": tiles_per_scene,
        "wall_s": wall,
        "forward_s": forward,
        "model_load_s": load,
        "scenes_per_minute": round(60.0 * scenes / wall, 3) if wall else None,
        "forward_only_scenes_per_minute": round(60.0 * scenes / forward, 3) if forward else None,
        "overhead_share": round((wall - forward) / wall, 4) if wall else None,
        "per_scene_steps_s": {name: round(value, 3) for name, value in stages.items()},
        "cpu_count": os.cpu_count(),
    }


def format_report(result: dict[str, Any]) -> str:
    share = result["overhead_share"]
    verdict = "meets" if share is not None and share <= 0.25 else "MISSES"
    lines = [
        f"landcover bench predict: {result['scenes']} scenes of {result['scene_size']}² "
        f"on {result['cpu_count']} CPUs",
        f"model       {result['arch']} base_filters={result['base_filters']}: "
        f"{result['params']:,} parameters, {result['model_mb']} MB (untrained)",
        f"tiling      tile {result['tile']}, overlap {result['overlap']}, "
        f"{result['tiles_per_scene']} tiles/scene, batch size {result['batch_size']}",
        f"wall        {result['wall_s']:.1f} s  → {result['scenes_per_minute']} scenes/min",
        f"forward     {result['forward_s']:.1f} s  (model alone: "
        f"{result['forward_only_scenes_per_minute']} scenes/min); model load "
        f"{result['model_load_s']:.1f} s",
        f"overhead    {share:.1%} of wall outside the forward pass ({verdict} the ≤ 25% target)",
        "per scene, outside Beam: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in result["per_scene_steps_s"].items()),
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench predict",
        description="Batch inference scenes/minute on 2448² scenes, and the overhead share.",
    )
    parser.add_argument("--scenes", type=int, default=1, help="synthetic scenes (default 1)")
    parser.add_argument("--arch", default="unet", help="unet | resnet50_unet (default unet)")
    parser.add_argument("--base-filters", type=int, default=64, help="model width (default 64)")
    parser.add_argument("--tile", type=int, default=TILE_SIZE)
    parser.add_argument("--overlap", type=int, default=TILE_OVERLAP)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--size", type=int, default=SCENE_SIZE, help="scene side (default 2448)")
    parser.add_argument("--workdir", help="where temporary scenes and outputs go")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    result = run_bench(
        scenes=args.scenes,
        arch=args.arch,
        base_filters=args.base_filters,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        size=args.size,
        workdir=args.workdir,
    )
    print(format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
