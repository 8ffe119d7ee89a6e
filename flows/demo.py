"""``landcover demo``: the whole job on synthetic data, through the real flows, on a laptop.

1. synthesize labeled scenes into ``<root>/raw`` (DeepGlobe file format);
2. the ``train`` flow: Beam preprocessing (DirectRunner) → ``unet`` trained briefly (few
   filters, CPU) → evaluated on the val scenes → promoted if better than the promoted model;
3. synthesize *unlabeled* scenes into ``<root>/incoming`` (their truth kept aside);
4. the ``nightly-inference`` flow: Beam batch inference with the promoted model;
5. evaluate those predictions against the kept-aside truth (metrics + pictures);
6. print a summary and the paths of the masks, the reports and the pictures.

Flows run against a temporary local Prefect (the ephemeral API server Prefect starts by itself)
whose state lives in ``<root>/prefect``, so nothing needs to be running beforehand, and the
runs, logs and artifacts can be browsed afterwards with
``PREFECT_HOME=<root>/prefect prefect server start``.

``--quick`` is the reduced form CI runs (fewer, smaller scenes; a few training steps): it
checks that everything connects, not that the models learn, and trains two architectures so
that the flow's compare-and-promote path runs for real.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT_ROOT = Path(".work") / "demo"


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one demo run (see :data:`FULL` and :data:`QUICK`).

    ``training``, ``preprocessing`` and ``inference`` are the flows' option groups:
    ``TrainConfig``, ``PreprocessOptions`` and ``PredictOptions`` fields. Plain dicts, so
    that ``landcover demo --help`` imports none of them.
    """

    archs: tuple[str, ...]
    labeled: int
    unlabeled: int
    size: int
    training: dict[str, Any]
    preprocessing: dict[str, Any]
    inference: dict[str, Any]


# Chosen so that the model learns visibly in a few CPU minutes (2 cores): 512² scenes give
# 4 patches of 256² each, trained on random 128² crops (4x cheaper steps, textures intact).
# Only ``unet``: the ResNet50 encoders without ImageNet weights learn little in CPU minutes
# (measured: ``resnet50_unet`` reached val mIoU 0.33 against unet's 0.91 while taking 4.6 of
# the demo's 7.3 minutes), and the flow's default trains every registered architecture anyway.
# Measured runs (times, scores, identical from run to run): docs/orchestration.md, "The embedded
# default".
FULL = DemoConfig(
    archs=("unet",),
    labeled=16,
    unlabeled=4,
    size=512,
    training={
        "epochs": 12,
        "steps_per_epoch": 25,
        "batch_size": 8,
        "crop_size": 128,
        "base_filters": 16,
        "learning_rate": 1e-3,
    },
    preprocessing={"patch_size": 256, "val_fraction": 0.2},
    inference={"tile": 256, "overlap": 32},
)
QUICK = DemoConfig(
    archs=("unet", "resnet50_unet"),
    labeled=6,
    unlabeled=2,
    size=192,
    training={
        "epochs": 1,
        "steps_per_epoch": 3,
        "batch_size": 2,
        "crop_size": None,
        "base_filters": 4,
        "learning_rate": 1e-3,
    },
    preprocessing={"patch_size": 96, "val_fraction": 0.34},
    inference={"tile": 96, "overlap": 16},
)
HOLDOUT_FIRST_ID = 900_000  # unlabeled scene ids: cannot collide with the labeled ones


def isolate_prefect(home: Path) -> None:
    """Point this process at a private, ephemeral Prefect before Prefect is imported."""
    for key in ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"):
        os.environ.pop(key, None)
    os.environ["PREFECT_HOME"] = str(home)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A fresh database is migrated on first start: slow on a small machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Training and Beam progress lines reach the console (and the Prefect UI) with the flows'.
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "landcover")


def holdout_baselines(labeled: str, holdout: str) -> dict[str, float]:
    """mIoU on the holdout scenes of the two reference rules fit on the labeled scenes
    (``pipelines.core.baselines``): the model should beat a per-pixel colour lookup, or the
    holdout says little about learning."""
    from pathlib import Path

    import numpy as np

    from pipelines.core import baselines, metrics
    from pipelines.io.imaging import decode_image_bytes, decode_mask_bytes

    def pairs(folder: str) -> list[tuple[np.ndarray, np.ndarray]]:
        found = []
        for image in sorted(Path(folder).glob("*_sat.jpg")):
            mask = image.with_name(image.name.replace("_sat.jpg", "_mask.png"))
            if mask.exists():
                found.append(
                    (
                        decode_image_bytes(image.read_bytes(), str(image)),
                        decode_mask_bytes(mask.read_bytes(), str(mask)),
                    )
                )
        return found

    train, test = pairs(labeled), pairs(holdout)
    if not train or not test:
        return {}
    means = baselines.class_rgb_means(train)
    majority = baselines.majority_class([ids for _, ids in train])
    rgb_cm = sum(
        metrics.confusion_matrix(ids, baselines.nearest_mean_prediction(image, means))
        for image, ids in test
    )
    majority_cm = sum(
        metrics.confusion_matrix(ids, np.full(ids.shape, majority, np.uint8)) for _, ids in test
    )
    return {
        "rgb_mean_miou": metrics.miou_from_confusion(np.asarray(rgb_cm)),
        "majority_miou": metrics.miou_from_confusion(np.asarray(majority_cm)),
    }


def step(number: int, total: int, text: str) -> float:
    print(f"\n=== [{number}/{total}] {text}", flush=True)
    return time.perf_counter()


def done(started: float) -> None:
    print(f"    … done in {time.perf_counter() - started:.0f}s", flush=True)


def summary_text(
    train_result: dict[str, Any],
    inference: dict[str, Any],
    holdout: dict[str, Any],
    paths: dict[str, str],
) -> str:
    """The closing summary: per-architecture scores, the promoted model, where things are."""
    from flows.report import number
    from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES

    models = train_result["models"]
    promoted = train_result.get("promoted_model") or {}
    archs = list(models)
    lines = ["", "=" * 78, "landcover demo: summary", "=" * 78, ""]
    lines.append(f"{'class':<14}" + "".join(f"{a:>16}" for a in archs) + f"{'holdout':>16}")
    lines.append(f"{'':<14}" + "".join(f"{'val IoU':>16}" for _ in archs) + f"{'(promoted)':>16}")
    for c in ACTIVE_CLASSES:
        name = CLASS_NAMES[c]
        cells = "".join(
            f"{number((models[a].get('per_class_iou') or {}).get(name)):>16}" for a in archs
        )
        lines.append(f"{name:<14}{cells}{number(holdout.get('per_class_iou', {}).get(name)):>16}")
    cells = "".join(f"{number(models[a].get('val_miou')):>16}" for a in archs)
    lines.append(f"{'mIoU':<14}{cells}{number(holdout.get('miou')):>16}")
    base = holdout.get("baselines") or {}
    if base:
        lines.append(
            f"{'baselines':<14}holdout mIoU: nearest RGB mean {number(base.get('rgb_mean_miou'))}, "
            f"majority class {number(base.get('majority_miou'))}"
        )
    lines += [
        "",
        f"promoted model:   {promoted.get('model_version', 'none')}"
        + (" (promoted by this run)" if train_result.get("promoted") else " (kept from before)"),
        f"inference:        {inference.get('predicted', 0)} scenes predicted, "
        f"{inference.get('already_done', 0)} already done, {inference.get('failed', 0)} failed",
        "",
        *(f"{label:<18}{path}" for label, path in paths.items()),
        "",
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover demo",
        description="Run the whole job on synthetic data through the Prefect flows: synth → "
        "train flow (preprocess, train unet, evaluate, promote) → "
        "nightly-inference flow → evaluate; prints a summary and where the outputs are.",
    )
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="work folder (data + Prefect)")
    parser.add_argument("--quick", action="store_true", help="reduced form for CI (~1-2 min)")
    parser.add_argument("--fresh", action="store_true", help="delete the work folder first")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    config = QUICK if args.quick else FULL
    root = Path(args.root).resolve()
    if args.fresh and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    isolate_prefect(root / "prefect")
    started = time.perf_counter()

    # Imported only now: Prefect reads PREFECT_HOME & co. when it loads.
    from flows import tasks
    from flows.inference import nightly_inference
    from flows.layout import Layout
    from flows.train import train
    from pipelines.io import storage
    from pipelines.predict.options import PredictOptions
    from pipelines.synth import write_scenes

    layout = Layout(str(root))
    inference_options = PredictOptions(**config.inference)
    holdout = root / "holdout"
    total = 5
    print(f"landcover demo ({'quick' if args.quick else 'full'}) in {root}: {asdict(config)}")

    t = step(
        1, total, f"synthesizing {config.labeled} labeled {config.size}px scenes into {layout.raw}"
    )
    write_scenes(layout.raw, config.labeled, size=config.size, seed=0)
    done(t)

    archs = " + ".join(config.archs)
    t = step(2, total, f"train flow: preprocess → train {archs} → evaluate → promote")
    train_result = train(
        root=str(root),
        archs=config.archs,
        # Seeded data order and deterministic kernels: two fresh demos print the same numbers.
        training={**config.training, "deterministic": True, "seed": 0},
        preprocessing=config.preprocessing,
        inference=inference_options,
        beam_args=[],  # DirectRunner here, whatever $LANDCOVER_BEAM_ARGS says
    )
    done(t)

    t = step(3, total, f"synthesizing {config.unlabeled} unlabeled scenes into {layout.incoming}")
    ids = write_scenes(
        str(holdout), config.unlabeled, size=config.size, seed=1, first_id=HOLDOUT_FIRST_ID
    )
    for scene_id in ids:
        storage.copy_file(
            str(holdout / f"{scene_id}_sat.jpg"),
            storage.join(layout.incoming, f"{scene_id}_sat.jpg"),
        )
    done(t)

    t = step(4, total, "nightly-inference flow: masks for every scene in incoming/")
    inference = nightly_inference(root=str(root), inference=inference_options, beam_args=[])
    done(t)

    t = step(5, total, "evaluating the predicted masks against the unlabeled scenes' truth")
    report = layout.report(f"{train_result['run']}-holdout")
    holdout_metrics: dict[str, Any] = {}
    if inference.get("output"):
        holdout_metrics = tasks.evaluate.fn(
            inference["output"],
            str(holdout),
            report,
            images_uri=str(holdout),
            labels=(str(inference["model_version"]),),
        )
        holdout_metrics["baselines"] = holdout_baselines(layout.raw, str(holdout))
    done(t)

    paths = {
        "masks:": str(inference.get("output", "")),
        "training report:": storage.join(train_result["report"], "report.md"),
        "val pictures:": storage.join(train_result["report"], "<arch>", "scenes", "*.png"),
        "holdout metrics:": storage.join(report, "metrics.json"),
        "holdout pictures:": storage.join(report, "scenes", "*.png"),
        "promoted pointer:": layout.promoted_pointer,
        "Prefect UI:": f"PREFECT_HOME={root / 'prefect'} prefect server start",
    }
    print(summary_text(train_result, inference, holdout_metrics, paths))
    print(f"demo finished in {time.perf_counter() - started:.0f}s")
    (root / "demo-summary.json").write_text(
        json.dumps(
            {"train": train_result, "inference": inference, "holdout": holdout_metrics},
            indent=2,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
