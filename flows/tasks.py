"""Prefect tasks: every piece of I/O and every long step the flows take.

Flows stay thin (they decide what to do); tasks do it. Each task that touches storage or runs a
stage retries with exponential backoff, but only on transient failures
(:mod:`flows.retries`), and none caches its result: these tasks have side effects (files moved,
models written) that a cache hit would silently skip.

Stage modules (Beam, TensorFlow) are imported inside the tasks, so importing ``flows`` (the
watcher, ``landcover up``, the deployments) stays cheap.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Sequence
from typing import Any, cast

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.options import train_config_of
from flows.retries import storage_retry_options
from pipelines.core.errors import BadInputError
from pipelines.core.manifest import Manifest
from pipelines.core.naming import basename
from pipelines.io import credentials, integrity, storage
from pipelines.predict.options import PredictOptions
from pipelines.preprocess.options import PreprocessOptions

BEAM_ARGS_ENV = "LANDCOVER_BEAM_ARGS"
# models.train logs its progress here; PREFECT_LOGGING_EXTRA_LOGGERS=landcover ships it to the UI.
TRAIN_LOGGER = "landcover"
_IO = {**storage_retry_options(), "cache_policy": NO_CACHE}


def resolve_beam_args(beam_args: Sequence[str] | None) -> list[str]:
    """Beam flags for a stage: the explicit ones, else ``$LANDCOVER_BEAM_ARGS``, else none.

    The environment variable lets a work pool choose the runner (its job variables set
    ``--runner DataflowRunner --project …`` for every flow it runs) while the deployments'
    parameters stay the same everywhere.
    """
    if beam_args is not None:
        return list(beam_args)
    return shlex.split(os.environ.get(BEAM_ARGS_ENV, ""))


# ---- storage ---------------------------------------------------------------------------------


@task(name="list-files", **_IO)
def list_files(prefix: str) -> list[tuple[str, int]]:
    """Files directly under ``prefix`` with their sizes (an empty list for a missing folder)."""
    if not storage.is_remote(prefix) and not os.path.isdir(prefix):
        return []
    return storage.list_with_sizes(prefix)


@task(name="read-json", **_IO)
def read_json(uri: str) -> dict[str, Any] | None:
    """The parsed JSON object at ``uri``, or ``None`` when there is none."""
    if not storage.exists(uri):
        return None
    return json.loads(storage.read_text(uri))


@task(name="write-json", **_IO)
def write_json(uri: str, data: Any) -> str:
    storage.write_text(uri, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return uri


@task(name="write-text", **_IO)
def write_text(uri: str, text: str) -> str:
    storage.write_text(uri, text)
    return uri


@task(name="copy-files", **_IO)
def copy_files(moves: list[tuple[str, str]]) -> int:
    """Copy (src, dst) pairs; re-running after a partial failure just copies again."""
    for src, dst in moves:
        storage.copy_file(src, dst)
    return len(moves)


@task(name="move-files", **_IO)
def move_files(moves: list[tuple[str, str]]) -> int:
    """Move (src, dst) pairs with :func:`pipelines.io.integrity.verified_move`.

    Copy, re-read and compare size and sha256, then delete the source; a destination holding
    other bytes raises ``ConflictError`` and nothing is overwritten. Idempotent, so a retry
    after a partial failure finishes the job: a source that is gone while its destination
    exists was moved by the earlier attempt.
    """
    moved = 0
    for src, dst in moves:
        if not storage.exists(src):
            if storage.exists(dst):
                moved += 1
                continue
            raise FileNotFoundError(f"cannot move {src}: it does not exist")
        integrity.verified_move(src, dst)
        moved += 1
    return moved


@task(name="delete-files", **_IO)
def delete_files(uris: list[str]) -> int:
    present = [uri for uri in uris if storage.exists(uri)]
    storage.delete(present)
    return len(present)


def start_deployment(
    name: str, parameters: dict[str, Any], *, idempotency_key: str | None = None
) -> str:
    """Create a run of deployment ``name`` (``flow/deployment``) without waiting; its id.

    The run is linked to the calling flow run as a subflow, so the UI shows where it came from.
    With ``idempotency_key`` the Prefect API returns the run already created under that key
    instead of a second one (a retried or re-run trigger starts one run, not two).
    """
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    run = cast(
        FlowRun,
        run_deployment(
            name,
            parameters=parameters,
            timeout=0,
            as_subflow=True,
            idempotency_key=idempotency_key,
        ),
    )
    return str(run.id)


def check_credentials(uris: Sequence[str]) -> None:
    """Fail in seconds, in one line, when a ``gs://`` URI is used without cloud credentials."""
    for uri in uris:
        credentials.check_credentials(uri)


# ---- stages ----------------------------------------------------------------------------------


@task(name="preprocess", **_IO)
def preprocess(options: PreprocessOptions, *, beam_args: list[str]) -> Manifest:
    """Beam preprocessing (``pipelines.preprocess.job.run_preprocess``); returns its manifest."""
    from pipelines.preprocess.job import run_preprocess

    return run_preprocess(options, beam_args=beam_args)


@task(name="fit", **_IO)
def fit(config: dict[str, Any]) -> dict[str, Any]:
    """Train one model (``models.train.loop.train``) from ``TrainConfig`` fields; its metadata.

    A retry after a transient failure resumes from the run's last checkpoint (training writes
    them under its output), so it does not start over.
    """
    from models.train.loop import train

    checked = train_config_of(config)
    progress = logging.getLogger(TRAIN_LOGGER)
    if progress.level == logging.NOTSET:  # show the per-step / per-epoch lines in the run's log
        progress.setLevel(logging.INFO)
    return train(checked)


@task(name="predict", **_IO)
def predict(
    model_uri: str,
    input_uri: str,
    output_uri: str,
    *,
    options: PredictOptions,
    beam_args: list[str],
) -> dict[str, Any]:
    """Beam batch inference (``pipelines.predict.job.run_predict``); skips scenes already done."""
    from pipelines.predict.job import run_predict

    return run_predict(model_uri, input_uri, output_uri, options, beam_args=beam_args)


@task(name="evaluate", **_IO)
def evaluate(
    pred_uri: str,
    truth_uri: str,
    output_uri: str,
    *,
    images_uri: str | None = None,
    second_pred_uri: str | None = None,
    labels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Metrics and pictures (``pipelines.evaluate.evaluate``); returns the metrics dict."""
    from pipelines.evaluate.job import evaluate as run_evaluate

    extra: dict[str, Any] = {}
    if labels is not None:
        extra["labels"] = labels
    return run_evaluate(
        pred_uri,
        truth_uri,
        output_uri,
        images_uri=images_uri,
        second_pred_uri=second_pred_uri,
        **extra,
    )


@task(name="validate-scenes", **_IO)
def validate_scenes(
    pairs: list[tuple[str, str, str]], images: list[tuple[str, str]]
) -> dict[str, list[Any]]:
    """Decode each file of a drop; split into good pairs, good images, and errors.

    ``pairs`` are (scene id, image uri, mask uri), ``images`` (scene id, image uri). Unlabeled
    images are decoded exactly as batch inference will decode them (GeoTIFF included).
    """
    from pipelines.io.labeled import read_labeled_scene  # what preprocessing will accept
    from pipelines.io.scenes import decode_scene  # the decoder inference uses (GeoTIFF too)

    logger = get_run_logger()
    good_pairs: list[tuple[str, str, str]] = []
    good_images: list[tuple[str, str]] = []
    errors: list[tuple[str, str]] = []
    for scene_id, image_uri, mask_uri in pairs:
        try:
            read_labeled_scene(image_uri, mask_uri)
            good_pairs.append((scene_id, image_uri, mask_uri))
        except BadInputError as error:
            logger.warning("rejected scene %s: %s", scene_id, error)
            partner = mask_uri if error.uri == image_uri else image_uri
            errors += [
                (error.uri, error.reason),
                (partner, f"its pair {basename(error.uri)} is invalid: {error.reason}"),
            ]
    for scene_id, image_uri in images:
        try:
            decode_scene(storage.read_bytes(image_uri), image_uri)
            good_images.append((scene_id, image_uri))
        except BadInputError as error:
            logger.warning("rejected image %s: %s", scene_id, error)
            errors.append((image_uri, error.reason))
    return {"pairs": good_pairs, "images": good_images, "errors": errors}
