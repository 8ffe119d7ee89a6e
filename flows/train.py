"""The ``train`` flow: records → candidates → evaluation → promotion → report.

```
raw/ ─ records      preprocess (skipped when records for the same inputs and options exist)
     ─ candidates   train-model(unet), train-model(…): one flow run per architecture (default:
                    all of ``models.registry.ARCHITECTURES``), locally a subflow, deployed a run
                    of the ``train-model`` deployment on the GPU work pool
     ─ evaluation   predict + evaluate each on the val scenes (and the promoted model, for a
                    fair baseline)
     ─ promotion    the best replaces the promoted model if it beats it
     ─ report       markdown artifact + reports/<run>/report.md
```

Each step after the records is a function of :mod:`flows.training` over typed values; this
module holds the records step, the two flows and the dispatch of training runs. The val scenes
are the scenes preprocessing wrote to the val split, read from the manifest's ``scene_ids``;
the flow never re-derives the split, which bad input could have changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from prefect import flow, get_run_logger

from flows import tasks
from flows.layout import Layout, fingerprint, new_run_id
from flows.options import preprocess_options, recorded_options
from flows.registry import read_promoted
from flows.training import candidates as candidates_step
from flows.training.candidates import Candidate, candidate_configs, read_candidates
from flows.training.evaluation import Evaluation, evaluate_candidates
from flows.training.promotion import Promotion, promote
from flows.training.report import publish_report
from models.registry import ARCHITECTURES
from models.train.config import TrainConfig
from pipelines.core.catalog import build_catalog
from pipelines.core.manifest import Manifest
from pipelines.core.records import MANIFEST_NAME
from pipelines.io import storage
from pipelines.predict.options import PredictOptions
from pipelines.preprocess.options import PreprocessOptions

DEFAULT_ARCHS: tuple[str, ...] = ARCHITECTURES


# ---- step 1: records -------------------------------------------------------------------------


def labeled_inputs(files: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """The files of ``raw/`` that preprocessing reads: every file the scene catalog counts as
    part of a scene (images, their world files, labels of any format: ``_mask.tif`` too, so a
    relabelled scene changes the fingerprint and is preprocessed again)."""
    members = set(build_catalog(name for name, _ in files).files)
    return [(n, s) for n, s in files if n in members]


def paired_ids(names: Sequence[str]) -> list[str]:
    """Scene ids with an image and a label (preprocessing's pairing: the scene catalog's)."""
    return sorted(s.scene_id for s in build_catalog(names).labeled)


def val_scene_ids(manifest: Manifest) -> list[str]:
    """The scene ids preprocessing wrote to the val split, as its manifest lists them (a
    manifest without them does not parse: ``Manifest.from_dict`` asks to re-run preprocess)."""
    return sorted(manifest.val_scene_ids)


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
            f"no labeled scenes under {layout.raw}: expected {{id}}_sat.jpg|tif + "
            "{id}_mask.png|tif"
        )
    records = layout.records(dataset)
    recorded = recorded_options(options)
    digest = fingerprint(inputs, recorded)
    previous = tasks.read_json(layout.fingerprint_file(dataset))
    written = published_manifest(records)
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


def published_manifest(records: str) -> dict[str, Any] | None:
    """The manifest of the dataset published at ``records``, or None when none is readable.

    Which folder that is is :func:`pipelines.io.records.resolve_dataset`'s answer, the same one
    training reads (its current version, or a legacy folder holding the manifest itself).
    """
    from pipelines.io.records import resolve_dataset

    try:
        folder = resolve_dataset(records)
    except (FileNotFoundError, ValueError):  # none published yet, or an unreadable pointer
        return None
    return tasks.read_json(storage.join(folder, MANIFEST_NAME))


# ---- step 2: candidates (the dispatch of one training run per architecture) -----------------


def train_candidates(
    configs: Mapping[str, TrainConfig], train_deployment: str | None
) -> list[Candidate]:
    """One ``train-model`` run per architecture; the trained candidates.

    With ``train_deployment`` every architecture becomes a run of that deployment (so a GPU work
    pool can run them on separate machines at once) and this flow waits for them; without it
    they run here as subflows, one after the other.
    """
    logger = get_run_logger()
    if not train_deployment:
        return [
            Candidate(arch, config, train_model(arch=arch, config=dataclasses.asdict(config)))
            for arch, config in configs.items()
        ]
    runs = {
        arch: tasks.start_deployment(
            train_deployment, {"arch": arch, "config": dataclasses.asdict(config)}
        )
        for arch, config in configs.items()
    }
    logger.info("started %s runs: %s", train_deployment, runs)
    states = candidates_step.wait_for_runs(runs)
    failed = {arch: s for arch, s in states.items() if s != "COMPLETED"}
    if failed:
        raise RuntimeError(f"training runs did not complete: {failed}")
    return read_candidates(configs)


# ---- the flows -------------------------------------------------------------------------------


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
    ``encoder_weights``…) over :data:`flows.training.candidates.FLOW_TRAINING` and
    TrainConfig's defaults; ``preprocessing``: ``pipelines.preprocess.options.PreprocessOptions``
    fields (``patch_size``, ``val_fraction``, ``seed``, ``record_format``, ``num_shards``);
    ``inference``: tiling of the val scenes' batch inference (:class:`PredictOptions`).
    All are checked before any work (:mod:`flows.options`). ``beam_args`` default to
    ``$LANDCOVER_BEAM_ARGS`` (the work pool picks the runner). ``train_deployment`` (e.g.
    ``train-model/landcover``) sends each architecture to that deployment instead of training
    here.
    """
    from prefect.runtime import flow_run

    layout = Layout(root)
    run = new_run_id(suffix=str(flow_run.id or "")[:8] or None)
    beam = tasks.resolve_beam_args(beam_args)
    # Every option is checked here: a typo must fail before an hour of preprocessing, not after.
    configs = candidate_configs(archs, training, layout=layout, dataset=dataset, version=run)
    options = preprocess_options(
        preprocessing, input_uri=layout.raw, output_uri=layout.records(dataset)
    )
    tasks.check_credentials([root])
    # Drops that wait for training now; ones arriving while this run trains stay due.
    due_at_start = list((tasks.read_json(layout.retrain_due) or {}).get("due") or [])

    manifest, preprocessed = prepare_records(layout, dataset, options, beam)
    candidates = train_candidates(configs, train_deployment)
    promoted = read_promoted(root)
    evaluation = evaluate_candidates(
        layout,
        layout.report(run),
        dataset,
        candidates,
        val_scene_ids(manifest),
        promoted,
        inference or PredictOptions(),
        beam,
    )
    promotion = promote(root, run, candidates, evaluation, promoted)
    publish_report(run, candidates, evaluation, promotion)

    clear_due(layout, due_at_start, run)
    return run_summary(run, layout, preprocessed, candidates, evaluation, promotion)


def run_summary(
    run: str,
    layout: Layout,
    preprocessed: bool,
    candidates: Sequence[Candidate],
    evaluation: Evaluation,
    promotion: Promotion,
) -> dict[str, Any]:
    """The flow's result (JSON, for the UI, the drop flow and the demo): what the run did."""
    models = {}
    for candidate in candidates:
        scored = evaluation.of(candidate.arch)
        models[candidate.arch] = {
            "model_uri": candidate.model_uri,
            "val_miou": None if scored is None else scored.miou,
            "per_class_iou": None if scored is None else scored.per_class_iou,
            "training_val_miou": candidate.training_val_miou,
            "report": evaluation.report_uri(candidate.arch),
        }
    return {
        "run": run,
        "dataset": evaluation.dataset,
        "records": layout.records(evaluation.dataset),
        "preprocessed": preprocessed,
        "val_scenes": list(evaluation.val_ids),
        "report": evaluation.report,
        "models": models,
        "promoted": promotion.promoted,
        "promoted_model": read_promoted(layout.root),
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
