"""The ``nightly-inference`` flow: masks for every waiting scene, with the promoted model.

Runs on a cron schedule (and after each imagery drop that brought unlabeled scenes). It reads
the promoted-model pointer, finds the scenes under ``<root>/incoming`` (or ``input_uri``) that
have no ``{id}_mask.png`` yet under ``<root>/predictions/<model version>/``, and runs the Beam
batch inference over them. Batch inference itself skips scenes whose mask exists, so a run
interrupted half-way finishes the rest next time; promoting a new model starts a new
predictions folder, so every scene gets a mask from the new model too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.layout import Layout
from flows.options import InferenceOptions
from flows.registry import read_promoted
from flows.report import inference_report
from pipelines.core.naming import mask_id_of, scene_id_of

ARTIFACT_KEY = "landcover-inference-report"


def pending_scenes(input_names: Sequence[str], output_names: Sequence[str]) -> list[str]:
    """Scene ids under the input that have no mask under the output yet (sorted)."""
    done = {mask_id_of(name) for name in output_names}
    scenes = {scene_id_of(name) for name in input_names}
    return sorted(s for s in scenes if s is not None and s not in done)


@flow(name="nightly-inference", log_prints=True)
def nightly_inference(
    root: str,
    input_uri: str | None = None,
    inference: InferenceOptions | None = None,
    beam_args: list[str] | None = None,
) -> dict[str, Any]:
    """Predict masks for the scenes that have none yet for the promoted model; report counts.

    ``inference``: tile, overlap and batch size (:class:`flows.options.InferenceOptions`,
    ``landcover predict``'s defaults).
    """
    logger = get_run_logger()
    layout = Layout(root)
    source = input_uri or layout.incoming
    pointer = read_promoted(root)
    if pointer is None:
        logger.warning("no promoted model yet: nothing to predict with (scenes wait in %s)", source)
        return {"status": "no-model", "input": source, "predicted": 0}
    version = pointer["model_version"]
    output = layout.predictions(version)
    inputs = [name for name, _ in tasks.list_files(source)]
    outputs = [name for name, _ in tasks.list_files(output)]
    todo = pending_scenes(inputs, outputs)
    total = len({s for s in map(scene_id_of, inputs) if s})
    summary: dict[str, Any] = {
        "status": "ok",
        "model_version": version,
        "input": source,
        "output": output,
        "scenes": total,
        "already_done": total - len(todo),
        "predicted": 0,
        "skipped": 0,
        "failed": 0,
    }
    if todo:
        logger.info("predicting %d of %d scenes with %s", len(todo), total, version)
        counts = tasks.predict(
            pointer["model_uri"],
            source,
            output,
            options=inference or InferenceOptions(),
            beam_args=tasks.resolve_beam_args(beam_args),
        )
        summary.update({k: counts.get(k, 0) for k in ("predicted", "skipped", "failed")})
    else:
        logger.info("all %d scenes in %s already have masks from %s", total, source, version)
    logger.info(
        "inference: %(scenes)d scenes, %(already_done)d already done, %(predicted)d predicted, "
        "%(failed)d failed → %(output)s",
        summary,
    )
    create_markdown_artifact(markdown=inference_report(summary), key=ARTIFACT_KEY)
    return summary
