"""The ``nightly-inference`` flow: masks for every waiting scene, with the promoted model.

Runs on a cron schedule (and after each imagery drop that brought unlabeled scenes). It reads
the promoted-model pointer (a promoted model that has disappeared is a clear error naming it),
and runs Beam batch inference over ``<root>/incoming`` (or ``input_uri``) into
``<root>/predictions/<model version>/``. Which scenes are done is batch inference's own
answer: each scene's done-record (``{id}.done.json``, written last) must match the input's
checksum, the model and the options, and the files it lists must be intact; anything else is
predicted again. This flow never judges done-ness by file names.

Each run also answers (:mod:`flows.answers`): the run's class-area table becomes the artifact
``landcover-area-stats``, and scenes it predicted whose footprints overlap earlier maps in the
folder's STAC catalog go through change detection (``change-detection``, into
``<root>/changes/<model version>/<run>/``).

Runs that would write the same predictions folder (the nightly run and a drop-triggered one)
take turns through a lease lock (:mod:`pipelines.io.locks`): the second waits, then finds the
scenes the first finished done, so each scene ends with exactly one complete output. The lease
is short and renewed by a heartbeat while the run lives, so a killed run's lock is taken over
by the next run at once (same host, holder's pid dead) or within a lease (another host).
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.answers import after_inference
from flows.layout import Layout
from flows.registry import promoted_model
from flows.report import inference_report
from pipelines.core.catalog import build_catalog
from pipelines.io import locks
from pipelines.predict.options import PredictOptions

ARTIFACT_KEY = "landcover-inference-report"
# How long a run waits for a live run writing the same predictions (a dead one's lock is taken
# over within a lease, locks.DEFAULT_LEASE_S, whatever this says).
PREDICT_LOCK_WAIT_S = 6 * 3600.0


@flow(name="nightly-inference", log_prints=True)
def nightly_inference(
    root: str,
    input_uri: str | None = None,
    inference: PredictOptions | None = None,
    beam_args: list[str] | None = None,
    lock_wait_s: float = PREDICT_LOCK_WAIT_S,
) -> dict[str, Any]:
    """Predict masks for the scenes not done yet for the promoted model; report counts.

    ``inference``: how batch inference tiles, runs and writes (:class:`PredictOptions`,
    ``landcover predict``'s flags). ``lock_wait_s``: how long to wait for another run writing
    the same predictions folder before giving up with its holder named.
    """
    from prefect.runtime import flow_run

    logger = get_run_logger()
    layout = Layout(root)
    source = input_uri or layout.incoming
    tasks.check_credentials([root, source])
    pointer = promoted_model(root)
    if pointer is None:
        logger.warning("no promoted model yet: nothing to predict with (scenes wait in %s)", source)
        return {"status": "no-model", "input": source, "predicted": 0}
    version = pointer["model_version"]
    output = layout.predictions(version)
    summary: dict[str, Any] = {
        "status": "ok",
        "model_version": version,
        "input": source,
        "output": output,
        "scenes": 0,
        "already_done": 0,
        "predicted": 0,
        "skipped": 0,
        "failed": 0,
    }
    owner = f"nightly-inference (flow run {flow_run.id or 'local'}, pid {os.getpid()})"
    with locks.lock(layout.predictions_lock(version), owner, wait_s=lock_wait_s):
        listed = build_catalog(name for name, _ in tasks.list_files(source))
        scenes = {scene.key for scene in listed.images}
        summary["scenes"] = len(scenes)
        if scenes:
            logger.info(
                "%d scenes in %s; predicting those not done for %s", len(scenes), source, version
            )
            counts = tasks.predict(
                pointer["model_uri"],
                source,
                output,
                options=inference or PredictOptions(),
                beam_args=tasks.resolve_beam_args(beam_args),
            )
            summary.update({k: counts.get(k, 0) for k in ("predicted", "skipped", "failed")})
            summary["already_done"] = summary["skipped"]
            # Inside the lock: the catalog read for change pairs is the one just written.
            summary["answers"] = after_inference(layout, version, counts, beam_args)
    logger.info(
        "inference: %(scenes)d scenes, %(already_done)d already done, %(predicted)d predicted, "
        "%(failed)d failed → %(output)s",
        summary,
    )
    create_markdown_artifact(markdown=inference_report(summary), key=ARTIFACT_KEY)
    return summary
