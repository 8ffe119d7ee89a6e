"""The ``train`` flow: records → every architecture → evaluation on val scenes → promotion.

```
raw/ ─ preprocess (skipped when records for the same inputs and options exist)
     ─ train-model(unet) ┐   one flow run per architecture (default: all of
     ─ train-model(…)    ┘   ``models.registry.ARCHITECTURES``): locally a subflow, deployed a
                             run of the ``train-model`` deployment on the GPU work pool
     ─ predict + evaluate each on the val scenes (and the promoted model, for a fair baseline)
     ─ promote the best if it beats the promoted model ─ markdown artifact + reports/<run>/report.md
```

The val scenes are the scenes preprocessing wrote to the val split, read from the manifest's
``scene_ids``; the flow never re-derives the split, which bad input could have changed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.layout import Layout, fingerprint, model_version, new_run_id
from flows.options import preprocess_options, recorded_options, train_config
from flows.registry import promote_if_better, read_promoted
from flows.report import training_report
from models.registry import ARCHITECTURES
from pipelines.core.manifest import Manifest
from pipelines.core.naming import (
    MASK_SUFFIX,
    METADATA_FILE,
    image_name,
    labeled_image_id_of,
    mask_id_of,
    mask_name,
)
from pipelines.core.records import MANIFEST_NAME
from pipelines.io import storage
from pipelines.predict.options import PredictOptions
from pipelines.preprocess.options import PreprocessOptions

DEFAULT_ARCHS: tuple[str, ...] = ARCHITECTURES
ARTIFACT_KEY = "landcover-training-report"
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# What the flow trains by default, over TrainConfig's defaults (one epoch of batch 4 suits a
# command-line smoke run; a scheduled or drop-triggered retraining trains longer).
FLOW_TRAINING: dict[str, Any] = {"epochs": 10, "batch_size": 8}


# ---- pure helpers ----------------------------------------------------------------------------


def labeled_inputs(files: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The files of ``raw/`` that preprocessing reads (scene images and masks)."""
    return [(n, s) for n, s in files if labeled_image_id_of(n) or n.endswith(MASK_SUFFIX)]


def paired_ids(names: Sequence[str]) -> list[str]:
    """Scene ids with both ``{id}_sat.jpg`` and ``{id}_mask.png`` (preprocessing's pairing)."""
    images = {labeled_image_id_of(n) for n in names}
    masks = {mask_id_of(n) for n in names}
    return sorted(i for i in images & masks if i)


def val_scene_ids(manifest: Manifest) -> list[str]:
    """The scene ids preprocessing wrote to the val split, as its manifest lists them (a
    manifest without them does not parse: ``Manifest.from_dict`` asks to re-run preprocess)."""
    return sorted(manifest.val_scene_ids)


def report_pictures(folder: str) -> list[str]:
    """The evaluator's pictures in a report folder: confusion matrix, then one per scene."""
    found = storage.match(storage.join(folder, "*.png"))
    found += storage.match(storage.join(folder, "scenes", "*.png"))
    return sorted(set(found), key=lambda uri: ("/scenes/" in uri, uri))


def best_candidate(candidates: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The candidate with the highest defined ``val_miou`` (ties: the first listed)."""
    scored = [c for c in candidates if c.get("val_miou") is not None]
    return max(scored, key=lambda c: float(c["val_miou"])) if scored else None


# ---- steps (each a few tasks) ----------------------------------------------------------------


def prepare_records(
    layout: Layout, dataset: str, options: PreprocessOptions, beam_args: list[str]
) -> tuple[Manifest, bool]:
    """Preprocess ``raw/`` into ``records/<dataset>/`` unless the same inputs+options are done.

    Returns (manifest, whether preprocessing ran).
    """
    logger = get_run_logger()
    inputs = labeled_inputs(tasks.list_files(layout.raw))
    if not inputs:
        raise ValueError(
            f"no labeled scenes under {layout.raw}: expected {{id}}_sat.jpg + _mask.png"
        )
    records = layout.records(dataset)
    recorded = recorded_options(options)
    digest = fingerprint(inputs, recorded)
    previous = tasks.read_json(layout.fingerprint_file(dataset))
    written = tasks.read_json(storage.join(current_records(records), MANIFEST_NAME))
    if previous and previous.get("fingerprint") == digest and written is not None:
        logger.info(
            "records %s are up to date (%d input files): skipping preprocess", records, len(inputs)
        )
        return Manifest.from_dict(written), False
    logger.info("preprocessing %d files from %s into %s", len(inputs), layout.raw, records)
    manifest = tasks.preprocess(options, beam_args=beam_args)
    tasks.write_json(
        layout.fingerprint_file(dataset),
        {"fingerprint": digest, "files": len(inputs), "options": recorded},
    )
    return manifest, True


def current_records(records: str) -> str:
    """The folder holding the dataset's manifest: its published version, or a legacy root."""
    from pipelines.io import versions

    try:
        return versions.resolve(records)
    except (FileNotFoundError, ValueError):
        return records


def _wait_for_runs(run_ids: dict[str, Any], poll_s: float = 10.0) -> dict[str, str]:
    """Poll deployment runs until each is final; returns arch → final state name."""
    from prefect.client.orchestration import get_client

    states: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        while len(states) < len(run_ids):
            for arch, run_id in run_ids.items():
                if arch in states:
                    continue
                state = client.read_flow_run(run_id).state
                if state is not None and state.type.value in FINAL_STATES:
                    states[arch] = state.type.value
            if len(states) < len(run_ids):
                time.sleep(poll_s)
    return states


def train_all(
    configs: dict[str, dict[str, Any]], train_deployment: str | None
) -> dict[str, dict[str, Any]]:
    """One ``train-model`` run per architecture; returns arch → training metadata.

    With ``train_deployment`` every architecture becomes a run of that deployment (so a GPU work
    pool can run them on separate machines at once) and this flow waits for them; without it
    they run here as subflows, one after the other.
    """
    logger = get_run_logger()
    if not train_deployment:
        return {arch: train_model(arch=arch, config=config) for arch, config in configs.items()}
    runs = {
        arch: tasks.start_deployment(train_deployment, {"arch": arch, "config": config})
        for arch, config in configs.items()
    }
    logger.info("started %s runs: %s", train_deployment, runs)
    states = _wait_for_runs(runs)
    failed = {arch: s for arch, s in states.items() if s != "COMPLETED"}
    if failed:
        raise RuntimeError(f"training runs did not complete: {failed}")
    metadata = {}
    for arch, config in configs.items():
        found = tasks.read_json(storage.join(config["output"], METADATA_FILE))
        if found is None:
            raise FileNotFoundError(
                f"the {arch} run completed without {config['output']}/metadata.json"
            )
        metadata[arch] = found
    return metadata


def stage_val_scenes(layout: Layout, ids: Sequence[str], run: str) -> tuple[str, str]:
    """Copy the val scenes' images and truth masks into the run's report folder.

    Batch inference and the evaluator read whole folders, and ``raw/`` holds every split.
    """
    base = storage.join(layout.report(run), "val")
    images, truth = storage.join(base, "images"), storage.join(base, "truth")
    moves = []
    for scene_id in ids:
        image, mask = image_name(scene_id), mask_name(scene_id)
        moves.append((storage.join(layout.raw, image), storage.join(images, image)))
        moves.append((storage.join(layout.raw, mask), storage.join(truth, mask)))
    tasks.copy_files(moves)
    return images, truth


def predict_val(
    model_uri: str, images: str, output: str, inference: PredictOptions, beam_args: list[str]
) -> str:
    masks = storage.join(output, "masks")
    tasks.predict(model_uri, images, masks, options=inference, beam_args=beam_args)
    return masks


# ---- flows ------------------------------------------------------------------------------------


@flow(name="train-model", flow_run_name="train-{arch}", log_prints=True)
def train_model(arch: str, config: dict[str, Any]) -> dict[str, Any]:
    """Train one architecture (``config``: ``models.train.TrainConfig`` fields incl. data/output).

    Its own flow so that a deployment can put each architecture on its own GPU worker.
    """
    return tasks.fit({**config, "arch": arch})


@flow(name="train", log_prints=True)
def train(
    root: str,
    dataset: str = "default",
    archs: tuple[str, ...] = DEFAULT_ARCHS,
    training: dict[str, Any] | None = None,
    preprocessing: dict[str, Any] | None = None,
    inference: PredictOptions | None = None,
    beam_args: list[str] | None = None,
    train_deployment: str | None = None,
) -> dict[str, Any]:
    """Preprocess, train every architecture in ``archs``, evaluate, promote the best.

    ``training``: ``models.train.config.TrainConfig`` fields (``epochs``, ``batch_size``,
    ``encoder_weights``…) over :data:`FLOW_TRAINING` and TrainConfig's defaults;
    ``preprocessing``: ``pipelines.preprocess.options.PreprocessOptions`` fields
    (``patch_size``, ``val_fraction``, ``seed``, ``record_format``, ``num_shards``);
    ``inference``: tiling of the val scenes' batch inference (:class:`PredictOptions`).
    All are checked before any work (:mod:`flows.options`). ``beam_args`` default to
    ``$LANDCOVER_BEAM_ARGS`` (the work pool picks the runner). ``train_deployment`` (e.g.
    ``train-model/landcover``) sends each architecture to that deployment instead of training
    here.
    """
    logger = get_run_logger()
    from prefect.runtime import flow_run

    if not archs:
        raise ValueError("archs is empty: name at least one architecture")
    layout = Layout(root)
    run = new_run_id(suffix=str(flow_run.id or "")[:8] or None)
    beam = tasks.resolve_beam_args(beam_args)
    inference = inference or PredictOptions()
    records = layout.records(dataset)
    version = run
    # Every option is checked here: a typo must fail before an hour of preprocessing, not after.
    overrides = {**FLOW_TRAINING, **(training or {})}
    configs = {
        arch: dataclasses.asdict(
            train_config(overrides, data=records, output=layout.model_dir(arch, version), arch=arch)
        )
        for arch in archs
    }
    options = preprocess_options(preprocessing, input_uri=layout.raw, output_uri=records)

    tasks.check_credentials([root])
    # Drops that wait for training now; ones arriving while this run trains stay due.
    due_at_start = list((tasks.read_json(layout.retrain_due) or {}).get("due") or [])
    manifest, preprocessed = prepare_records(layout, dataset, options, beam)
    metadata = train_all(configs, train_deployment)

    val_ids = val_scene_ids(manifest)
    report = layout.report(run)
    results: dict[str, dict[str, Any]] = {}
    candidates = []
    baseline_score: float | None = None
    current = read_promoted(root)
    if val_ids:
        logger.info("evaluating on %d val scenes: %s", len(val_ids), ", ".join(val_ids))
        images, truth = stage_val_scenes(layout, val_ids, run)
        masks = {
            arch: predict_val(
                configs[arch]["output"], images, storage.join(report, arch), inference, beam
            )
            for arch in archs
        }
        for arch in archs:
            others = [a for a in archs if a != arch]
            metrics = tasks.evaluate(
                masks[arch],
                truth,
                storage.join(report, arch),
                images_uri=images,
                second_pred_uri=masks[others[0]] if others else None,
                labels=(arch, *others[:1]),
            )
            results[arch] = {"metrics": metrics}
        if current is not None:
            baseline_score = evaluate_promoted(current, images, truth, report, inference, beam)
    else:
        logger.warning("no val scenes in %s: comparing models by their training val mIoU", records)

    for arch in archs:
        meta = metadata.get(arch) or {}
        model_uri = configs[arch]["output"]
        scored: dict[str, Any] | None = results.setdefault(arch, {}).get("metrics")
        score = scored.get("miou") if scored else meta.get("val_miou")
        results[arch].update(
            {
                "training": {
                    "val_miou": meta.get("val_miou"),
                    "epochs": len(meta.get("history") or []) or configs[arch]["epochs"],
                    "wall_time_s": meta.get("wall_time_s"),
                },
                "model_uri": model_uri,
                "report_uri": storage.join(report, arch),
                "pictures": report_pictures(storage.join(report, arch)),
            }
        )
        candidates.append(
            {
                "arch": arch,
                "version": version,
                "model_version": model_version(arch, version),
                "model_uri": model_uri,
                "val_miou": score,
                "evaluated_on": f"{len(val_ids)} val scenes of records/{dataset}",
                "per_class_iou": (scored or {}).get("per_class_iou"),
                "training_run": run,
            }
        )

    best = best_candidate(candidates)
    promoted = bool(best) and promote_if_better(root, best, current_score=baseline_score)  # type: ignore[arg-type]
    promotion = {
        "promoted": promoted,
        "candidate": best,
        "previous": current.get("model_version") if current else None,
        "baseline_score": baseline_score
        if baseline_score is not None
        else (current or {}).get("val_miou"),
    }
    if promoted:
        logger.info("promoted %s (val mIoU %.4f)", best["model_version"], best["val_miou"])  # type: ignore[index]
    else:
        logger.info("kept the promoted model: %s", promotion)

    markdown = training_report(run, dataset, results, promotion)
    tasks.write_text(storage.join(report, "report.md"), markdown)
    create_markdown_artifact(markdown=markdown, key=ARTIFACT_KEY, description=f"training run {run}")
    clear_due(layout, due_at_start, run)
    return {
        "run": run,
        "dataset": dataset,
        "records": records,
        "preprocessed": preprocessed,
        "val_scenes": val_ids,
        "report": report,
        "models": {
            arch: {
                "model_uri": r["model_uri"],
                "val_miou": (r.get("metrics") or {}).get("miou"),
                "per_class_iou": (r.get("metrics") or {}).get("per_class_iou"),
                "training_val_miou": r["training"]["val_miou"],
                "report": r["report_uri"],
            }
            for arch, r in results.items()
        },
        "promoted": promoted,
        "promoted_model": read_promoted(root),
    }


def clear_due(layout: Layout, trained: list[dict[str, Any]], run: str) -> None:
    """Remove the drops this run trained on from ``retrain-due.json``, and only those.

    Re-read at the end: drops recorded while the run trained were not in its data, so they stay.
    """
    if not trained:
        return
    state = tasks.read_json(layout.retrain_due) or {}
    left = [entry for entry in state.get("due") or [] if entry not in trained]
    tasks.write_json(layout.retrain_due, {**state, "due": left, "cleared_by": run})


def evaluate_promoted(
    current: dict[str, Any],
    images: str,
    truth: str,
    report: str,
    inference: PredictOptions,
    beam_args: list[str],
) -> float | None:
    """The promoted model's mIoU on these val scenes, or ``None`` if it cannot be scored."""
    logger = get_run_logger()
    name = f"promoted-{current.get('model_version', 'model')}"
    try:
        masks = predict_val(
            current["model_uri"], images, storage.join(report, name), inference, beam_args
        )
        metrics = tasks.evaluate(masks, truth, storage.join(report, name))
    except Exception as error:  # a lost or unreadable model must not block a new one
        logger.warning(
            "could not re-evaluate the promoted model (%s); using its stored score", error
        )
        return None
    score = metrics.get("miou")
    return None if score is None else float(score)
