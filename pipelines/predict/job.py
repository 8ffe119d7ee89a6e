"""Batch inference: scenes of any size → predicted ``{id}_mask.png`` in DeepGlobe colours.

The Beam job, per scene::

    {id}_sat.jpg|png|tif  → decode (bad scenes → errors/)  → overlapping tiles (edge tiles
    reflect-padded), keyed (scene id, tile index, height, width)  → RunInference with
    KerasSegmentationHandler (model loaded once per worker, tiles batched across scenes)
    → group the tiles of a scene  → blended stitch of class probabilities  → argmax
    → {id}_mask.png (+ optional {id}_classes.png, {id}_probs.npz), written atomically

Where each part lives: scene discovery and decoding in ``pipelines.io.scenes``, the model
handler in ``handler``, the Beam steps and the ``PredictScenes`` composite in ``transforms``,
file encoding and writing in ``outputs``; this module runs them (options, skip-what-is-done,
waves, error files, the summary).

Shared with training, never re-implemented here: pixel normalisation (the serving API applies
``models.normalization.normalize_image`` to each batch), the tile grid and blend weights
(``pipelines.core.tiling``), the palette (``pipelines.core.palette``).

Nightly-safe: before running, the output is listed once and scenes whose ``{id}_mask.png``
exists are skipped (unless ``overwrite``). The mask is the last file a scene writes, and every
file is written whole or not at all, so "mask exists" means "scene done": a re-run after a crash
predicts exactly the scenes that are missing. Bad scenes (undecodable, duplicate ids) go to
``<output>/errors/predict-*.jsonl`` and the job goes on; they are retried on the next run.

Memory: a scene's tiles are grouped before stitching, and a batch runner (the local
DirectRunner) materialises every tile prediction of a run before the first stitch starts:
a 2448² scene is 25 tiles of 612²×7 probabilities, 100 MB once cropped to the scene and held
as float16. So local runs process scenes in waves of ``scenes_per_wave`` (default 8, ~1 GB of
tile predictions plus the runner's copies of them) and each wave is its own pipeline;
a stitch then holds one scene's (H, W, 7) float32 canvas (168 MB at 2448²) plus one tile at a
time. Distributed runners (Dataflow) shuffle through their own storage and get one run.

Python API (what the Prefect flows call): :func:`run_predict`. CLI: ``landcover predict``.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from pipelines.core import tiling
from pipelines.core.errors import ERRORS_DIR
from pipelines.core.naming import MODEL_FILE
from pipelines.core.tiling import TILE_OVERLAP, TILE_SIZE
from pipelines.io import storage
from pipelines.io.beam_runtime import create_pipeline, is_local, pipeline_options
from pipelines.io.scenes import Scene, existing_mask_ids, find_scenes
from pipelines.predict.handler import FORWARD_US, METRICS_NAMESPACE
from pipelines.predict.outputs import OutputOptions
from pipelines.predict.transforms import SCENES_FAILED, SCENES_PREDICTED, STAGE, PredictScenes

DEFAULT_SCENES_PER_WAVE = 8
# Beam's own distribution of model loading times, under the handler's metrics namespace.
LOAD_MODEL_LATENCY = "load_model_latency_milli_secs"

log = logging.getLogger(__name__)


def resolve_model_uri(model_uri: str) -> str:
    """A ``model.keras`` file, or a folder holding one (e.g. a training output) → the file."""
    is_file = model_uri.endswith(".keras")
    candidate = model_uri if is_file else storage.join(model_uri, MODEL_FILE)
    if not storage.exists(candidate):
        raise FileNotFoundError(f"no model at {candidate} (pass a .keras file or its folder)")
    return candidate


def _metric_total(result: Any, name: str, kind: str = "counters") -> int:
    """A job's counter (or a distribution's sum) over all steps; committed values when known."""
    query = result.metrics().query(
        MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name)
    )
    total = 0
    for item in query[kind]:
        value = item.committed if item.committed is not None else item.attempted
        if value is not None:
            total += int(value.sum if kind == "distributions" else value)
    return total


def _remove_empty_local_dir(path: str) -> None:
    """Beam's file sink leaves its (emptied) folder behind even when it wrote nothing."""
    if not storage.is_remote(path) and os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


def _waves(scenes: list[Scene], size: int) -> list[list[Scene]]:
    """Scenes in runs of at most ``size`` (one run when ``size`` <= 0): memory bound, see above."""
    if size <= 0:
        return [scenes]
    return [scenes[i : i + size] for i in range(0, len(scenes), size)]


def run_predict(
    model_uri: str,
    input_uri: str,
    output_uri: str,
    *,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = 4,
    overwrite: bool = False,
    write_class_ids: bool = False,
    write_probabilities: bool = False,
    beam_args: Sequence[str] = (),
    scenes_per_wave: int | None = None,
) -> dict[str, Any]:
    """Predict every scene under ``input_uri`` into ``output_uri``; returns the summary.

    ``{"predicted", "skipped", "failed", "output"}`` plus ``scenes`` (matched), ``errors``
    (the error files written) and ``timings`` (wall, forward pass, model loading, seconds).
    ``scenes_per_wave``: scenes per pipeline run; None = 8 on local runners, all at once on
    distributed ones; 0 = all at once.
    """
    started = time.perf_counter()
    tiling.tile_origins(tile, tile, overlap)  # validates tile and overlap before any work
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if input_uri.rstrip("/") == output_uri.rstrip("/"):
        raise ValueError(
            "output must differ from input: labeled inputs hold {id}_mask.png truths that "
            "would be taken for finished predictions"
        )
    model_file = resolve_model_uri(model_uri)
    scenes = find_scenes(input_uri)
    done = set() if overwrite else existing_mask_ids(output_uri)
    todo = [scene for scene in scenes if scene.scene_id not in done]
    skipped = len(scenes) - len(todo)
    options = pipeline_options(beam_args)
    if scenes_per_wave is None:
        scenes_per_wave = DEFAULT_SCENES_PER_WAVE if is_local(options) else 0
    outputs = OutputOptions(output_uri, tile, overlap, write_class_ids, write_probabilities)
    run_tag = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    predicted = failed = forward_us = load_ms = 0
    error_files: list[str] = []
    for wave_index, wave in enumerate(_waves(todo, scenes_per_wave) if todo else []):
        errors_prefix = storage.join(output_uri, ERRORS_DIR, f"{STAGE}-{run_tag}-w{wave_index:03d}")
        pipeline = create_pipeline(options)
        results = (
            pipeline
            | "Scenes" >> beam.Create(wave)
            | "Predict" >> PredictScenes(model_file, outputs, batch_size)
        )
        _ = results["errors"] | "WriteErrors" >> beam.io.WriteToText(
            errors_prefix, file_name_suffix=".jsonl", shard_name_template="", skip_if_empty=True
        )
        result = pipeline.run()
        result.wait_until_finish()
        wave_failed = _metric_total(result, SCENES_FAILED)
        predicted += _metric_total(result, SCENES_PREDICTED)
        failed += wave_failed
        forward_us += _metric_total(result, FORWARD_US)
        load_ms += _metric_total(result, LOAD_MODEL_LATENCY, "distributions")
        if wave_failed:
            error_files.append(f"{errors_prefix}.jsonl")
        _remove_empty_local_dir(storage.join(output_uri, ERRORS_DIR))
        log.info("wave %d: %d scenes done", wave_index, len(wave))
    return {
        "predicted": predicted,
        "skipped": skipped,
        "failed": failed,
        "output": output_uri,
        "scenes": len(scenes),
        "errors": error_files,
        "timings": {
            "wall_s": round(time.perf_counter() - started, 3),
            "forward_s": round(forward_us / 1e6, 3),
            "model_load_s": round(load_ms / 1e3, 3),
        },
    }
