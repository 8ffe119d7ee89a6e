"""``landcover bench tta``: what test-time augmentation buys (mIoU) and costs (seconds).

Predicts the labeled scenes under ``--scenes`` (``{id}_sat.jpg`` + ``{id}_mask.png``, held out
from the model's training) once per mode, ``--tta none|flip|d4``, through the real job
(``run_predict``, PNG output), and scores each run's masks against the truths with the
DeepGlobe metric (``pipelines.core.metrics``: one confusion matrix over all scenes, unknown
truth ignored). All modes run in this one process, one after the other, so their seconds are
comparable; the first mode also pays Beam's and TensorFlow's start-up, so the forward-pass
seconds are the fairer cost figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipelines.core.tiling import TILE_BATCH_SIZE, TILE_OVERLAP, TILE_SIZE, TTA_MODES


def score_masks(pred_dir: str, truth_dir: str, scene_ids: Sequence[str]) -> dict[str, Any]:
    """mIoU and pixel accuracy of ``{id}_mask.png`` predictions against the truths."""
    from pipelines.core import metrics
    from pipelines.core.naming import mask_name
    from pipelines.io import imaging, storage

    cm = np.zeros((7, 7), np.int64)
    for scene_id in scene_ids:
        masks = []
        for folder in (truth_dir, pred_dir):
            uri = storage.join(folder, mask_name(scene_id))
            masks.append(imaging.decode_mask_bytes(storage.read_bytes(uri), uri))
        cm += metrics.confusion_matrix(masks[0], masks[1])
    return {
        "miou": round(float(metrics.miou_from_confusion(cm)), 4),
        "pixel_accuracy": round(float(metrics.pixel_accuracy(cm)), 4),
    }


def labeled_scene_ids(scenes_dir: str) -> list[str]:
    """Ids with both ``{id}_sat.*`` and ``{id}_mask.png`` under ``scenes_dir`` (sorted)."""
    from pipelines.core.naming import mask_id_of, scene_id_of

    names = os.listdir(scenes_dir)
    images = {scene_id_of(name) for name in names} - {None}
    masks = {mask_id_of(name) for name in names} - {None}
    return sorted(str(i) for i in images & masks)


def run_bench(
    model: str,
    scenes_dir: str,
    *,
    modes: Sequence[str] = TTA_MODES,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = TILE_BATCH_SIZE,
    workdir: str | None = None,
) -> dict[str, Any]:
    """Predict and score the scenes once per mode; returns the figures printed."""
    from pipelines.predict.job import run_predict
    from pipelines.predict.options import PredictOptions

    scene_ids = labeled_scene_ids(scenes_dir)
    if not scene_ids:
        raise ValueError(f"no labeled scenes ({{id}}_sat.* + {{id}}_mask.png) in {scenes_dir}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="landcover-bench-tta-", dir=workdir) as tmp:
        for mode in modes:
            out = os.path.join(tmp, mode)
            options = PredictOptions(
                tile=tile, overlap=overlap, batch_size=batch_size, format="png", tta=mode
            )
            summary = run_predict(model, scenes_dir, out, options)
            if summary["predicted"] != len(scene_ids):
                raise RuntimeError(f"tta {mode}: {summary['predicted']} of {len(scene_ids)} done")
            row = {"tta": mode, **score_masks(out, scenes_dir, scene_ids)}
            row.update(
                wall_s=summary["timings"]["wall_s"], forward_s=summary["timings"]["forward_s"]
            )
            rows.append(row)
    base = next((r for r in rows if r["tta"] == "none"), rows[0])
    for row in rows:
        row["miou_change"] = round(row["miou"] - base["miou"], 4)
        row["forward_relative"] = (
            round(row["forward_s"] / base["forward_s"], 2) if base["forward_s"] else None
        )
    return {"scenes": scene_ids, "model": model, "tile": tile, "overlap": overlap, "rows": rows}


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"landcover bench tta: {len(result['scenes'])} held-out scene(s) "
        f"{', '.join(result['scenes'])}, tile {result['tile']}/{result['overlap']}, "
        f"{os.cpu_count()} CPUs",
        "tta   mIoU    change  pixel acc  wall s  forward s  forward ×",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['tta']:<5} {r['miou']:.4f}  {r['miou_change']:+.4f}  {r['pixel_accuracy']:.4f}"
            f"     {r['wall_s']:6.1f}  {r['forward_s']:9.1f}  {r['forward_relative']}"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench tta",
        description="mIoU and seconds of --tta none|flip|d4 on held-out labeled scenes.",
    )
    parser.add_argument("--model", required=True, help="model.keras or its folder")
    parser.add_argument(
        "--scenes", required=True, help="folder of held-out {id}_sat.jpg + {id}_mask.png"
    )
    parser.add_argument("--modes", default=",".join(TTA_MODES), help="default none,flip,d4")
    parser.add_argument("--tile", type=int, default=TILE_SIZE)
    parser.add_argument("--overlap", type=int, default=TILE_OVERLAP)
    parser.add_argument("--batch-size", type=int, default=TILE_BATCH_SIZE)
    parser.add_argument("--workdir", help="where temporary predictions go")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - set(TTA_MODES):
        parser.error(f"--modes: a comma list of {', '.join(TTA_MODES)}")
    result = run_bench(
        args.model,
        args.scenes,
        modes=modes,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        workdir=args.workdir,
    )
    print(format_report(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
