"""``landcover bench quality``: the training recipe on real DeepGlobe scenes, against baselines.

Two suites, each a stated training budget in minutes (``--max-minutes``, the trainer's own):

- ``512`` (default): ``../shared/deepglobe-512``, 161 real scenes resampled to 512² (GSD
  2.390625 m). A **fixed split by scene** (:func:`split_512`): in id order, every 5th scene
  (the 1st, 6th, …) is the **test** split, every 8th of the others the **val** split (best-epoch
  selection), the rest train. The published model (its best val epoch) is scored on the test
  scenes it never saw, whole 512² scenes.
- ``full``: ``../shared/deepglobe-sample``, the four full-size scenes (2448², 0.5 m), one held
  out per fold, rotating. With three training scenes there is no val split to choose an epoch
  on, so each fold trains one epoch (the budget's whole schedule) and is scored on its held-out
  scene, predicted by the patch grid.

In both suites ``--target-gsd`` trains and predicts at a coarser GSD (scenes resampled as
``landcover preprocess --target-gsd`` does: area for images, class shares for labels);
predictions are brought back to the scene's own grid (nearest) and scored there, so every
GSD is scored on the same pixels. ``--tta flip|d4`` scores each trained model a second time
under ``landcover predict``'s test-time augmentation (row ``ARCH+MODE``).

Both suites train with the ``cpu`` preset (``TrainConfig.from_preset("cpu")``) and its
defaults unless flags say otherwise, and compute two baselines from the same training scenes
on the same test pixels: **majority** (the most frequent active class everywhere) and
**rgb-mean** (each pixel the class whose mean training colour is nearest). The report: per
class IoU, mIoU and pixel accuracy per method, one confusion matrix per table (truth rows ×
predicted columns, summed over the test scenes/folds), and the minutes each training took.
Written to ``OUTPUT/quality.json`` too.

Datasets are written here in process (the patch grid, record encoding, manifest and shard
checksums of ``landcover preprocess``, without Beam) because the split must be chosen scenes,
not the preprocess job's hash split.
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
from pipelines.core.gsd import DEEPGLOBE_GSD_M
from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, NUM_CLASSES, class_pixel_counts
from pipelines.core.tiling import TTA_MODES

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
SUITES: dict[str, dict[str, Any]] = {
    # folder, the scenes' GSD (m), the patch side written, the default budget (minutes)
    "512": {"folder": SHARED / "deepglobe-512", "gsd": 2.390625, "patch": 512, "minutes": 25.0},
    "full": {
        "folder": SHARED / "deepglobe-sample",
        "gsd": DEEPGLOBE_GSD_M,
        "patch": 612,
        "minutes": 20.0,
    },
}
PATCH = 612
BASELINES: tuple[str, ...] = ("majority", "rgb-mean")
TEST_EVERY, VAL_EVERY = 5, 8


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


def split_512(scenes: Sequence[Scene]) -> dict[str, list[Scene]]:
    """The fixed split of the 512 suite: test = every 5th scene in id order, val = every 8th
    of the rest, train = the others (129 → 33 test, 16 val, 112 train for 161 scenes)."""
    ordered = sorted(scenes, key=lambda s: s.scene_id)
    test = ordered[::TEST_EVERY]
    rest = [s for i, s in enumerate(ordered) if i % TEST_EVERY]
    return {
        "train": [s for i, s in enumerate(rest) if i % VAL_EVERY],
        "val": rest[::VAL_EVERY],
        "test": test,
    }


# ---- resampling (``--target-gsd``) -------------------------------------------------------------


def resample_scene(scene: Scene, factor: float) -> Scene:
    """``scene`` with ``factor`` times fewer pixels a side: image by area, labels by class
    shares (the mode), as ``landcover preprocess --target-gsd`` resamples."""
    from pipelines.core.resample import apply_taps, make_taps, target_shape

    height, width = scene.ids.shape
    out_h, out_w = target_shape(height, width, factor, factor)
    rows, cols = make_taps(height, out_h, "area"), make_taps(width, out_w, "area")
    image = apply_taps(apply_taps(scene.image.astype(np.float32), rows, 0), cols, 1)
    shares = np.zeros((out_h, out_w, NUM_CLASSES), np.float32)
    for c in range(NUM_CLASSES):
        plane = (scene.ids == c).astype(np.float32)
        shares[..., c] = apply_taps(apply_taps(plane, rows, 0), cols, 1)
    ids = shares.argmax(-1).astype(np.uint8)
    return Scene(scene.scene_id, np.clip(np.rint(image), 0, 255).astype(np.uint8), ids)


def _shape(ids: np.ndarray) -> tuple[int, int]:
    """A class map's (height, width), typed as the grid it is."""
    return int(ids.shape[0]), int(ids.shape[1])


def upsample_ids(ids: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Class ids back onto a finer grid of ``shape`` (nearest, as predict writes them)."""
    from pipelines.core.resample import make_taps

    rows = make_taps(ids.shape[0], shape[0], "nearest").index[:, 0]
    cols = make_taps(ids.shape[1], shape[1], "nearest").index[:, 0]
    return ids[np.ix_(rows, cols)]


# ---- baselines ---------------------------------------------------------------------------------


def baseline_predictions(train: Sequence[Scene], test: Scene) -> dict[str, np.ndarray]:
    """Both baselines' class ids for ``test``, fitted on ``train``."""
    pairs = [(s.image, s.ids) for s in train]
    means = class_rgb_means(pairs)
    return {
        "majority": np.full(test.ids.shape, majority_class([ids for _, ids in pairs]), np.uint8),
        "rgb-mean": nearest_mean_prediction(test.image, means),
    }


def baseline_confusions(train: Sequence[Scene], held_out: Scene) -> dict[str, np.ndarray]:
    """Confusion matrices of both baselines on ``held_out``."""
    return {
        name: metrics.confusion_matrix(held_out.ids, pred)
        for name, pred in baseline_predictions(train, held_out).items()
    }


# ---- a dataset ---------------------------------------------------------------------------------


def write_dataset(
    splits: dict[str, Sequence[Scene]], out: str, patch: int, gsd: float | None = None
) -> str:
    """Records of each split's scenes (``train``, ``val``) + manifest under ``out``."""
    import tensorflow as tf

    from pipelines.core.gsd import DatasetGsd, format_gsd
    from pipelines.core.manifest import Manifest
    from pipelines.core.records import RecordFormat
    from pipelines.core.tiling import patch_grid
    from pipelines.io.records import encode_patch, shard_info, write_manifest

    fmt = RecordFormat()
    os.makedirs(out, exist_ok=True)
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
    count_all = sum(len(s) for s in splits.values())
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
        gsd=None if gsd is None else DatasetGsd(gsd, {format_gsd(gsd): count_all}),
    )
    write_manifest(out, manifest)
    return out


# ---- training and scoring ----------------------------------------------------------------------


def train_model(arch: str, data: str, output: str, options: dict[str, Any]) -> dict[str, Any]:
    """Train ``arch`` with the CPU preset (``options`` win); returns the metadata and time."""
    from models.train.config import TrainConfig
    from models.train.loop import train

    config = TrainConfig.from_preset("cpu", data=data, output=output, arch=arch, **options)
    started = time.perf_counter()
    metadata = train(config)
    return {"metadata": metadata, "seconds": time.perf_counter() - started}


def train_and_predict(
    arch: str,
    data: str,
    output: str,
    options: dict[str, Any],
    images: Sequence[np.ndarray],
    patch: int,
    tta_modes: Sequence[str] = ("none",),
) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Train ``arch`` afresh on ``data`` (``train_model``), load the published ``model.keras``
    as serving does, and predict the class ids of each held-out image once per test-time
    augmentation mode: both suites' one path from training data to scored predictions."""
    from models.serving import load_model

    result = train_model(arch, data, output, {**options, "fresh": True})
    model = load_model(os.path.join(output, "model.keras"))
    return result, {
        mode: [predict_ids(model, image, patch, mode) for image in images] for mode in tta_modes
    }


def predict_ids(model: Any, image: np.ndarray, patch: int, tta: str = "none") -> np.ndarray:
    """Class ids of a whole scene: the scene itself when it is one patch, else its patch grid
    (the shifted last row and column of ``pipelines.core.tiling.patch_grid``); ``tta`` as
    ``landcover predict --tta``."""
    from models.serving import predict_tiles
    from pipelines.core.tiling import patch_grid

    height, width = image.shape[:2]
    if height <= patch and width <= patch:
        return predict_tiles(model, image[None], tta)[0].argmax(-1).astype(np.uint8)
    out = np.zeros((height, width), np.uint8)
    for y, x in patch_grid(height, width, patch):
        tile = image[y : y + patch, x : x + patch]
        out[y : y + patch, x : x + patch] = predict_tiles(model, tile[None], tta)[0].argmax(-1)
    return out


def model_rows(arch: str, tta: str) -> dict[str, str]:
    """The report's row of each prediction mode of ``arch``: the plain prediction under the
    architecture's name, ``--tta``'s beside it (``unet+d4``), so one training scores both."""
    return {"none": arch, **({tta: f"{arch}+{tta}"} if tta != "none" else {})}


def coarsened(scenes: Sequence[Scene], factor: float) -> list[Scene]:
    """``scenes`` at ``factor`` times their GSD (``--target-gsd``), or themselves at 1."""
    return list(scenes) if factor == 1.0 else [resample_scene(s, factor) for s in scenes]


def score(cm: np.ndarray) -> dict[str, Any]:
    iou = metrics.iou_from_confusion(cm)
    return {
        "miou": metrics.miou_from_confusion(cm),
        "pixel_accuracy": metrics.pixel_accuracy(cm),
        "per_class_iou": {CLASS_NAMES[c]: float(iou[c]) for c in ACTIVE_CLASSES},
    }


# ---- report ------------------------------------------------------------------------------------


def table(results: dict[str, dict[str, Any]]) -> str:
    """Per-class IoU (rows) × method (columns), mIoU and pixel accuracy, and per fold."""

    def cell(value: float | None) -> str:
        return f"{'n/a':>14}" if value is None or np.isnan(value) else f"{value:>14.3f}"

    methods = list(results)
    lines = [f"{'class IoU':<14}" + "".join(f"{m:>14}" for m in methods)]
    for c in ACTIVE_CLASSES:
        name = CLASS_NAMES[c]
        lines.append(
            f"{name:<14}" + "".join(cell(results[m]["per_class_iou"][name]) for m in methods)
        )
    lines.append(f"{'mIoU':<14}" + "".join(cell(results[m]["miou"]) for m in methods))
    lines.append(
        f"{'pixel acc.':<14}" + "".join(cell(results[m]["pixel_accuracy"]) for m in methods)
    )
    folds = len(next(iter(results.values()))["fold_miou"])
    if folds > 1:
        for k in range(folds):
            lines.append(
                f"{'mIoU fold ' + str(k + 1):<14}"
                + "".join(cell(results[m]["fold_miou"][k]) for m in methods)
            )
    minutes = [results[m].get("train_minutes") for m in methods]
    lines.append(
        f"{'train min.':<14}"
        + "".join(f"{'':>14}" if v is None else f"{v:>14.1f}" for v in minutes)
    )
    return "\n".join(lines)


def confusion_text(name: str, cm: np.ndarray) -> str:
    """A confusion matrix of active classes, truth rows × predicted columns, in pixels."""
    short = [CLASS_NAMES[c][:6] for c in ACTIVE_CLASSES]
    lines = [f"confusion of {name} (rows truth, columns predicted, pixels):"]
    lines.append(f"{'':<8}" + "".join(f"{s:>11}" for s in short))
    for r in ACTIVE_CLASSES:
        lines.append(
            f"{CLASS_NAMES[r][:6]:<8}" + "".join(f"{int(cm[r, c]):>11}" for c in ACTIVE_CLASSES)
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench quality",
        description="The training recipe on real DeepGlobe scenes within a minutes budget, "
        "against a majority-class and a nearest-RGB-mean baseline: suite 512 (deepglobe-512, "
        "fixed split by scene) or full (the four 2448² scenes, rotating hold-out).",
    )
    parser.add_argument("--suite", choices=tuple(SUITES), default="512")
    parser.add_argument(
        "--scenes", default=None, help="folder of labelled scenes; default: the suite's"
    )
    parser.add_argument("--output", default=".work/bench-quality", help="work folder + results")
    parser.add_argument(
        "--patch", type=int, default=None, help="patch side written; default: the suite's"
    )
    parser.add_argument("--archs", default="unet", help="comma-separated, or all")
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="training budget of each model (each fold in the full suite); default: the "
        "suite's (512: 25, full: 20 split over the folds)",
    )
    parser.add_argument(
        "--folds", type=int, default=None, help="full suite; default: one per scene"
    )
    parser.add_argument("--epochs", type=int, default=None, help="validations in the budget")
    parser.add_argument(
        "--target-gsd",
        type=float,
        default=None,
        help="train and predict at this GSD (m), scored on the scenes' own grid",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="also score each model under this test-time augmentation (rows ARCH+MODE)",
    )
    parser.add_argument(
        "--train",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other TrainConfig field, e.g. --train loss=dice (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _train_options(args: argparse.Namespace) -> dict[str, Any]:
    from pipelines.core.options import parse_assignments

    options: dict[str, Any] = {"seed": args.seed, "checkpoint_every": 100_000, "log_every": 50}
    if args.epochs is not None:
        options["epochs"] = args.epochs
    options.update(parse_assignments(args.train))
    return options


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from models.train.cli import log_progress_to_stderr

    log_progress_to_stderr()
    from models.registry import ARCHITECTURES, parse_architectures

    archs = list(ARCHITECTURES) if args.archs == "all" else list(parse_architectures(args.archs))
    suite = {**SUITES[args.suite]}
    if args.patch is not None:
        suite["patch"] = args.patch
    folder = args.scenes or str(suite["folder"])
    started = time.perf_counter()
    scenes = load_scenes(folder)
    options = _train_options(args)
    run = _run_512 if args.suite == "512" else _run_full
    results, confusions, facts = run(args, scenes, archs, options, suite)
    total = time.perf_counter() - started
    print("\n" + table(results))
    for name, cm in confusions.items():
        print("\n" + confusion_text(name, cm))
    print(f"\ntotal {total / 60:.1f} min on {os.cpu_count()} CPUs; {facts['summary']}")
    os.makedirs(args.output, exist_ok=True)
    report = {
        "suite": args.suite,
        "scenes": folder,
        "options": options,
        **facts,
        "results": results,
        "confusion": {k: v.tolist() for k, v in confusions.items()},
        "seconds": round(total, 1),
    }
    with open(os.path.join(args.output, "quality.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    return 0


def _run_512(
    args: argparse.Namespace,
    scenes: list[Scene],
    archs: list[str],
    options: dict[str, Any],
    suite: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    split = split_512(scenes)
    minutes = args.max_minutes or suite["minutes"]
    factor = _factor(args, suite)
    gsd = suite["gsd"] * factor
    print(
        f"bench quality 512: {len(scenes)} scenes: train {len(split['train'])}, val "
        f"{len(split['val'])}, test {len(split['test'])} (test: every {TEST_EVERY}th in id "
        f"order from {split['test'][0].scene_id}); archs {archs}, cpu preset + {options}, "
        f"{minutes} min each, training at {gsd:g} m; {os.cpu_count()} CPUs",
        flush=True,
    )
    coarse = {name: coarsened(part, factor) for name, part in split.items()}
    patch = min(suite["patch"], *(min(s.ids.shape) for s in coarse["train"] + coarse["val"]))
    data = write_dataset(
        {"train": coarse["train"], "val": coarse["val"]},
        os.path.join(args.output, "records"),
        patch,
        gsd,
    )
    rows = {arch: model_rows(arch, args.tta) for arch in archs}
    cms: dict[str, np.ndarray] = {
        m: np.zeros((NUM_CLASSES,) * 2, np.int64)
        for m in [*(r for arch in archs for r in rows[arch].values()), *BASELINES]
    }
    for test in split["test"]:
        for name, pred in baseline_predictions(split["train"], test).items():
            cms[name] += metrics.confusion_matrix(test.ids, pred)
    minutes_of: dict[str, float] = {}
    epochs_of: dict[str, Any] = {}
    for arch in archs:
        result, predictions = train_and_predict(
            arch,
            data,
            os.path.join(args.output, arch),
            {**options, "max_minutes": minutes},
            [test.image for test in coarse["test"]],
            patch,
            tuple(rows[arch]),
        )
        for mode, row in rows[arch].items():
            for test, pred in zip(split["test"], predictions[mode], strict=True):
                cms[row] += metrics.confusion_matrix(test.ids, upsample_ids(pred, _shape(test.ids)))
            minutes_of[row] = result["seconds"] / 60
        meta = result["metadata"]
        epochs_of[arch] = {
            "best_epoch": meta["best_epoch"],
            "steps": meta["steps"],
            "val_miou": meta["val_miou"],
        }
        scored = ", ".join(
            f"{row} {metrics.miou_from_confusion(cms[row]):.3f}" for row in rows[arch].values()
        )
        print(
            f"{arch}: test mIoU {scored} (best epoch {meta['best_epoch']}, {meta['steps']} "
            f"steps) in {minutes_of[arch]:.1f} min",
            flush=True,
        )
    results = {
        m: {
            **score(cm),
            "fold_miou": [metrics.miou_from_confusion(cm)],
            **({"train_minutes": round(minutes_of[m], 2)} if m in minutes_of else {}),
        }
        for m, cm in cms.items()
    }
    facts = {
        "split": {k: [s.scene_id for s in v] for k, v in split.items()},
        "max_minutes": minutes,
        "train_gsd_m": gsd,
        "models": epochs_of,
        "summary": f"deepglobe-512 test split ({len(split['test'])} scenes), {minutes} min "
        f"budget at {gsd:g} m",
    }
    return results, cms, facts


def _factor(args: argparse.Namespace, suite: dict[str, Any]) -> float:
    """How many times coarser than the suite's scenes ``--target-gsd`` trains (1: as they are);
    finer than the scenes is refused: it would invent detail."""
    if args.target_gsd is None:
        return 1.0
    if args.target_gsd < suite["gsd"]:
        raise SystemExit(
            f"landcover bench quality: --target-gsd {args.target_gsd:g} is finer than the "
            f"suite's scenes ({suite['gsd']:g} m)"
        )
    return args.target_gsd / suite["gsd"]


def _run_full(
    args: argparse.Namespace,
    scenes: list[Scene],
    archs: list[str],
    options: dict[str, Any],
    suite: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    folds = min(args.folds or len(scenes), len(scenes))
    minutes = args.max_minutes or suite["minutes"] / folds
    factor = _factor(args, suite)
    gsd = suite["gsd"] * factor
    options = {"epochs": 1, **options}
    print(
        f"bench quality full: {len(scenes)} scenes, {folds} folds (held out in turn), archs "
        f"{archs}, cpu preset + {options}, {minutes:.2f} min a fold, training at {gsd:g} m; "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    coarse = coarsened(scenes, factor)
    rows = {arch: model_rows(arch, args.tta) for arch in archs}
    fold_cms: dict[str, list[np.ndarray]] = {
        m: [] for m in [*(r for arch in archs for r in rows[arch].values()), *BASELINES]
    }
    seconds = {row: 0.0 for arch in archs for row in rows[arch].values()}
    for k in range(folds):
        held_out = scenes[k]
        train = [s for i, s in enumerate(scenes) if i != k]
        for name, cm in baseline_confusions(train, held_out).items():
            fold_cms[name].append(cm)
        train_coarse = [s for i, s in enumerate(coarse) if i != k]
        data = write_dataset(
            {"train": train_coarse, "val": [coarse[k]]},
            os.path.join(args.output, f"fold{k + 1}", "records"),
            suite["patch"],
            gsd,
        )
        for arch in archs:
            result, predictions = train_and_predict(
                arch,
                data,
                os.path.join(args.output, f"fold{k + 1}", arch),
                {**options, "max_minutes": minutes},
                [coarse[k].image],
                suite["patch"],
                tuple(rows[arch]),
            )
            for mode, row in rows[arch].items():
                (pred,) = predictions[mode]
                pred = upsample_ids(pred, _shape(held_out.ids))
                fold_cms[row].append(metrics.confusion_matrix(held_out.ids, pred))
                seconds[row] += result["seconds"]
            scored = ", ".join(
                f"{row} {metrics.miou_from_confusion(fold_cms[row][-1]):.3f}"
                for row in rows[arch].values()
            )
            print(
                f"fold {k + 1}/{folds} (held out {held_out.scene_id}) {arch}: mIoU "
                f"{scored} (rgb-mean "
                f"{metrics.miou_from_confusion(fold_cms['rgb-mean'][-1]):.3f}) in "
                f"{result['seconds'] / 60:.1f} min",
                flush=True,
            )
    cms = {m: np.sum(v, axis=0) for m, v in fold_cms.items()}
    results = {
        m: {
            **score(cms[m]),
            "fold_miou": [metrics.miou_from_confusion(c) for c in v],
            **({"train_minutes": round(seconds[m] / 60, 2)} if m in seconds else {}),
        }
        for m, v in fold_cms.items()
    }
    facts = {
        "folds": folds,
        "max_minutes_per_fold": minutes,
        "train_gsd_m": gsd,
        "summary": f"deepglobe-sample, {folds} folds, {minutes:.2f} min a fold at {gsd:g} m",
    }
    return results, cms, facts
