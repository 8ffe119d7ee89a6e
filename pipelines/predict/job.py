"""Batch inference: scenes of any size → class maps (DeepGlobe PNG, or a georeferenced COG).

The Beam job (steps in ``transforms``), per scene::

    {id}_sat.jpg|png|tif → plan (checksum, fingerprint, skip if done; a large georeferenced
    scene is split into --block-size blocks that are separate elements) → read by windows,
    skip all-nodata tiles, model (optionally with TTA), streaming blend → outputs written band
    by band → {id}.done.json written LAST (the commit point)

Formats (``outputs``): ``png`` writes ``{id}_mask.png`` in DeepGlobe colours (+ ``_classes.png``,
``_probs.npz``); ``cog`` writes ``{id}_mask.tif``, a COG of class ids with the input's CRS,
transform and nodata (+ ``_probs.tif``). Default: cog for georeferenced rasters, png otherwise.

Answers (``pipelines.answers``, via ``answers``), per scene before its record:
``{id}_stats.json`` (class areas), ``{id}_polygons.gpkg|parquet`` (``--vectors``) and
``{id}_item.json`` (a STAC Item); the COGs carry class names and provenance inside. Per run,
after the pipeline: ``stats/<run>.parquet`` + ``.csv`` (one row per scene and class) and the
folder's STAC ``collection.json``, rebuilt from its Items.

Memory is bounded by the tile, the batch and the region's width (``streaming``), not the scene:
a band of at most ``tile`` rows is held, never the whole scene (png output holds the scene's
class ids, one byte a pixel). Each block of a block-parallel run stitches its own tile grid with a
hard cut at block borders (``pipelines.core.tiling.grid_frame``): equal to the single-worker path
for a model whose receptive field is within the blend margin, and no tile is run twice.

GSD (``resolution``, ``regrid``): a scene whose ground sample distance is not the model's
(``metadata.json``'s ``input.gsd_m``) is resampled to it by windows, predicted there, and its
outputs are resampled back to the scene's own grid (classes by nearest, probabilities by
bilinear); its record says so. ``--gsd`` overrides a wrong or missing one.

Nightly-safe (see ``records``): a scene is skipped iff its record is current (same input, model
and output options) and its outputs are intact; otherwise it is predicted again. Bad scenes
(undecodable, wrong bands, a corrupt window) go to ``<output>/errors/predict-*.jsonl`` naming
the file (and window) and the job goes on; they are retried on the next run.

Local runs still process scenes in waves of ``PredictOptions.scenes_per_wave`` scenes (the
DirectRunner materialises a stage's outputs before the next starts); distributed runners get one
run.

Python API (what the Prefect flows call): :func:`run_predict`. CLI: ``landcover predict``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from pipelines.answers.stac import update_collection
from pipelines.answers.stats import stats_rows
from pipelines.answers.tables import STATS_SCHEMA, write_table
from pipelines.core.catalog import build_catalog
from pipelines.core.errors import ERRORS_DIR
from pipelines.core.naming import MODEL_FILE
from pipelines.core.provenance import ModelRef
from pipelines.core.quiet import quiet_harmless
from pipelines.io import storage
from pipelines.io.beam_runtime import create_pipeline, is_local, pipeline_options
from pipelines.io.integrity import resolved_same_or_inside
from pipelines.io.scenes import Scene, find_scenes
from pipelines.predict import records
from pipelines.predict.handler import FORWARD_US, METRICS_NAMESPACE
from pipelines.predict.options import PredictOptions
from pipelines.predict.resolution import NO_MODEL_GSD, read_model_gsd
from pipelines.predict.transforms import (
    BLOCKS,
    MODEL_PIXELS,
    NO_CRS_WARNING,
    NODATA_PIXELS,
    SCENES_FAILED,
    SCENES_PREDICTED,
    SCENES_RESAMPLED,
    SCENES_SKIPPED,
    SCENES_WITHOUT_CRS,
    STAGE,
    TILES_RUN,
    TILES_SKIPPED_NODATA,
    PredictScenes,
)

# The run's stats tables, under the predictions folder: stats/<run>.parquet and .csv.
STATS_DIR = "stats"
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


def publish_run(
    output_uri: str,
    scenes: Sequence[Scene],
    model: ModelRef,
    run_tag: str,
    started_at: dt.datetime,
) -> dict[str, Any]:
    """After the pipeline: the run's stats table and the folder's STAC Collection.

    The table has one row per class of every scene of this run's input that has a record (the
    scenes predicted now and those already done, from their records' stats), written to
    ``<output>/stats/<run>.parquet`` and ``.csv``; the Collection is rebuilt from the Items in
    the folder. Returns the summary's ``predicted_ids`` (records written by this run),
    ``stats_table`` and ``collection``.
    """
    rows: list[dict[str, Any]] = []
    predicted: list[str] = []
    for scene_id in sorted({s.scene_id for s in scenes if not s.problem}):
        record = records.read_record(output_uri, scene_id)
        if record is None:
            continue
        if dt.datetime.fromisoformat(record.written_at) >= started_at:
            predicted.append(scene_id)
        stats = record.summary.get("stats")
        if isinstance(stats, dict):
            rows += stats_rows(stats, {"model_version": model.version})
    table = write_table(
        rows,
        STATS_SCHEMA,
        storage.join(output_uri, STATS_DIR, f"{run_tag}.parquet"),
        storage.join(output_uri, STATS_DIR, f"{run_tag}.csv"),
    )
    collection = update_collection(output_uri) if storage.exists(output_uri) else None
    return {"predicted_ids": predicted, "stats_table": list(table), "collection": collection}


def check_paths(input_uri: str, output_uri: str) -> None:
    """Refuse an output folder that is the input folder or inside it, or that holds any input
    file, however the input is named (before any work).

    "Holds an input file": a scene image or the file ``--input`` names (``--input a/x_sat.jpg
    --output a``), or a label file (``{id}_mask.*``) that no done-record of predict accounts
    for (``--input images --output masks`` where masks/ holds the truth masks): predict would
    write its ``{id}_mask.png`` over them.
    """
    if resolved_same_or_inside(output_uri, input_uri):
        raise ValueError(
            f"output {output_uri} must not be the input folder or inside it: labeled inputs "
            "hold {id}_mask.png truths that would be taken for predictions, and outputs "
            "would be read back as scenes"
        )
    if storage.is_remote(output_uri):
        present = storage.exists(output_uri) or bool(_listing(output_uri))
    else:
        present = os.path.isdir(output_uri)
    if not present:
        return
    listed = build_catalog(_listing(output_uri))
    held = [s.image.uri for s in listed.images if s.image is not None]
    for scene in listed.scenes:
        if scene.label is None:
            continue
        name = scene.label.uri.rstrip("/").rsplit("/", 1)[-1]
        if name not in records.accounted_outputs(output_uri, scene.scene_id):
            held.append(scene.label.uri)
    if held:
        raise ValueError(
            f"output {output_uri} holds input files predict did not write "
            f"({', '.join(sorted(held)[:3])}{', …' if len(held) > 3 else ''}): its outputs "
            "would replace them; choose an output folder of its own"
        )


def _listing(folder: str) -> list[str]:
    try:
        return storage.list_files(folder)
    except Exception:  # a missing gs:// prefix lists as nothing, or fails by scheme
        return []


def run_predict(
    model_uri: str,
    input_uri: str,
    output_uri: str,
    options: PredictOptions | None = None,
    *,
    beam_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Predict every scene under ``input_uri`` into ``output_uri``; returns the summary.

    ``options``: how to tile, run and write (:class:`PredictOptions`, validated first; None:
    its defaults). The summary: ``{"predicted", "skipped", "failed", "output"}`` plus
    ``scenes`` (matched), ``errors`` (the error files written), ``tiles_run``,
    ``tiles_skipped_nodata``, ``nodata_pixels``, ``model_pixels`` (pixels the model ran over:
    tiles run x the planned tile's pixels), ``blocks``, ``tta``, ``warnings`` and
    ``timings`` (wall, forward pass, model loading, seconds).
    """
    started = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    options = (options or PredictOptions()).validate()
    quiet_harmless()
    check_paths(input_uri, output_uri)
    model_file = resolve_model_uri(model_uri)
    model = records.model_ref(model_file)
    model_gsd = read_model_gsd(model_file)
    scenes = find_scenes(input_uri)
    beam_options = pipeline_options(beam_args)
    scenes_per_wave = options.waves(is_local(beam_options))
    run_tag = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    totals = dict.fromkeys(_COUNTERS, 0)
    load_ms = 0
    error_files: list[str] = []
    done = 0
    for wave_index, wave in enumerate(_waves(scenes, scenes_per_wave) if scenes else []):
        errors_prefix = storage.join(output_uri, ERRORS_DIR, f"{STAGE}-{run_tag}-w{wave_index:03d}")
        pipeline = create_pipeline(beam_options)
        results = (
            pipeline
            | "Scenes" >> beam.Create(wave)
            | "Predict"
            >> PredictScenes(
                model_file, model, output_uri, options, model_gsd, progress=(done, len(scenes))
            )
        )
        _ = results["errors"] | "WriteErrors" >> beam.io.WriteToText(
            errors_prefix, file_name_suffix=".jsonl", shard_name_template="", skip_if_empty=True
        )
        result = pipeline.run()
        result.wait_until_finish()
        wave_totals = {name: _metric_total(result, name) for name in _COUNTERS}
        for name, value in wave_totals.items():
            totals[name] += value
        load_ms += _metric_total(result, LOAD_MODEL_LATENCY, "distributions")
        if wave_totals[SCENES_FAILED]:
            error_files.append(f"{errors_prefix}.jsonl")
        _remove_empty_local_dir(storage.join(output_uri, ERRORS_DIR))
        done += len(wave)
        log.info("wave %d: %d scenes done", wave_index, len(wave))
    catalog = publish_run(output_uri, scenes, model, run_tag, started_at)
    warnings = []
    ignored = [s.scene_id for s in scenes if s.world_file and options.format == "png"]
    if ignored:
        warnings.append(
            f"{len(ignored)} scene(s) have a world file whose georeference --format png does "
            f"not keep (outputs in pixel space): {', '.join(ignored[:5])}"
        )
    if totals[SCENES_WITHOUT_CRS]:
        warnings.append(f"{totals[SCENES_WITHOUT_CRS]} scene(s): {NO_CRS_WARNING}")
    return {
        "predicted": totals[SCENES_PREDICTED],
        "skipped": totals[SCENES_SKIPPED],
        "failed": totals[SCENES_FAILED],
        "output": output_uri,
        "scenes": len(scenes),
        "errors": error_files,
        "tiles_run": totals[TILES_RUN],
        "tiles_skipped_nodata": totals[TILES_SKIPPED_NODATA],
        "nodata_pixels": totals[NODATA_PIXELS],
        "model_pixels": totals[MODEL_PIXELS],
        "blocks": totals[BLOCKS],
        "tta": options.tta,
        "gsd": {
            "model_m": model_gsd,
            "override_m": options.gsd,
            "resampled_scenes": totals[SCENES_RESAMPLED],
            **({} if model_gsd is not None else {"note": NO_MODEL_GSD}),
        },
        **catalog,
        "warnings": warnings,
        "timings": {
            "wall_s": round(time.perf_counter() - started, 3),
            "forward_s": round(totals[FORWARD_US] / 1e6, 3),
            "model_load_s": round(load_ms / 1e3, 3),
        },
    }


_COUNTERS = (
    SCENES_PREDICTED,
    SCENES_SKIPPED,
    SCENES_FAILED,
    SCENES_WITHOUT_CRS,
    TILES_RUN,
    TILES_SKIPPED_NODATA,
    NODATA_PIXELS,
    MODEL_PIXELS,
    BLOCKS,
    SCENES_RESAMPLED,
    FORWARD_US,
)
