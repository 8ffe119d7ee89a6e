"""Batch inference: scenes of any size → predicted ``{id}_mask.png`` in DeepGlobe colours.

The Beam job, per scene::

    {id}_sat.jpg|png|tif  → decode (bad scenes → errors/)  → overlapping tiles (edge tiles
    reflect-padded), keyed (scene id, tile index, height, width)  → RunInference with
    KerasSegmentationHandler (model loaded once per worker, tiles batched across scenes)
    → group the tiles of a scene  → blended stitch of class probabilities  → argmax
    → {id}_mask.png (+ optional {id}_classes.png, {id}_probs.npz), written atomically

Shared with training, never re-implemented here: pixel normalisation
(``pipelines.io.imaging.normalize_image``, applied to each batch inside the handler), the
tile grid and blend weights (``pipelines.core.tiling``), the palette (``pipelines.core.palette``).

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

import io
import logging
import os
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.ml.inference.base import (
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)

from pipelines.core import tiling
from pipelines.core.errors import ERRORS_DIR, BadInputError, ErrorRecord
from pipelines.core.naming import (
    CLASSES_SUFFIX,
    MASK_SUFFIX,
    MODEL_FILE,
    PROBS_SUFFIX,
    mask_id_of,
    mask_name,
    scene_id_of,
    scene_rank,
)
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES, encode_mask
from pipelines.core.tiling import TILE_OVERLAP, TILE_SIZE
from pipelines.io import imaging, storage
from pipelines.io.beam_runtime import create_pipeline, is_local, pipeline_options

STAGE = "predict"
METRICS_NAMESPACE = "landcover.predict"
DEFAULT_SCENES_PER_WAVE = 8
SHUFFLE_DTYPE = np.float16  # tile probabilities on their way to the stitch (see by_scene)
# Masks are flat colour regions: zlib's run-length strategy writes them ~40% faster than the
# default deflate and smaller (a 2448² synthetic mask: 45 KB vs 127 KB at level 1).
MASK_PNG_LEVEL = 1
MASK_PNG_STRATEGY = zlib.Z_RLE

log = logging.getLogger(__name__)

# (scene id, tile index, scene height, scene width): everything the stitch needs, in the key.
TileKey = tuple[str, int, int, int]


# ---- scenes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """One input scene; ``problem`` is set for scenes rejected before decoding."""

    scene_id: str
    uri: str
    problem: str = ""


def find_scenes(input_uri: str) -> list[Scene]:
    """Scene images in a folder (one level), or the one file ``input_uri`` names.

    One listing call, whatever the number of scenes. When an id has several images (say
    ``1_sat.jpg`` and ``1_sat.png``) the first in ``naming.SCENE_IMAGE_SUFFIXES`` order is used
    and the others become bad input (named, not silently dropped).
    """
    if scene_id_of(input_uri) is not None and storage.exists(input_uri):
        candidates = [input_uri]
    else:
        storage.check_readable_root(input_uri)
        candidates = storage.match(storage.join(input_uri, "*_sat.*"))
    by_id: dict[str, list[str]] = {}
    for uri in candidates:
        scene_id = scene_id_of(uri)
        if scene_id is not None:
            by_id.setdefault(scene_id, []).append(uri)
    scenes: list[Scene] = []
    for scene_id in sorted(by_id):
        uris = sorted(by_id[scene_id], key=scene_rank)
        scenes.append(Scene(scene_id, uris[0]))
        scenes.extend(
            Scene(scene_id, other, f"duplicate image of scene {scene_id}; {uris[0]} was used")
            for other in uris[1:]
        )
    return scenes


def decode_scene(data: bytes, uri: str) -> np.ndarray:
    """Scene bytes → (H, W, 3) uint8; TIFFs through ``pipelines.io.tfio``, others PIL."""
    from pipelines.io import tfio

    if uri.lower().endswith(tfio.TIFF_SUFFIXES):
        return tfio.decode_tiff(data, uri)
    return imaging.decode_image_bytes(data, uri)


def existing_mask_ids(output_uri: str) -> set[str]:
    """Ids whose mask is already written under ``output_uri`` (one listing call)."""
    # A missing folder or prefix matches nothing; any other listing error must stop the run
    # rather than pass for "nothing done yet" and re-predict everything.
    masks = storage.match(storage.join(output_uri, f"*{MASK_SUFFIX}"))
    return {scene_id for uri in masks if (scene_id := mask_id_of(uri)) is not None}


def resolve_model_uri(model_uri: str) -> str:
    """A ``model.keras`` file, or a folder holding one (e.g. a training output) → the file."""
    is_file = model_uri.endswith(".keras")
    candidate = model_uri if is_file else storage.join(model_uri, MODEL_FILE)
    if not storage.exists(candidate):
        raise FileNotFoundError(f"no model at {candidate} (pass a .keras file or its folder)")
    return candidate


# ---- the model handler -----------------------------------------------------------------------


class KerasSegmentationHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """RunInference handler for the project's Keras segmentation models.

    Beam's ``TFModelHandlerTensor`` imports ``tensorflow_hub`` and loads with
    ``tf.keras``, which cannot read Keras 3 ``.keras`` files, hence this one. Examples are uint8
    tiles (H, W, 3): 4× smaller than float32 while buffered and batched, and the normalisation
    is applied here, to the whole batch, by the shared ``normalize_image``. Predictions are
    float32 class probabilities (H, W, 7).

    Time spent in the forward pass alone is counted in the ``forward_us`` counter, so a run can
    tell the model's share of its wall time from the pipeline's (decode, tiling, stitching,
    encoding, I/O).
    """

    def __init__(self, model_uri: str, batch_size: int = 4) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {batch_size}")
        super().__init__(min_batch_size=batch_size, max_batch_size=batch_size)
        self.model_uri = model_uri
        self.batch_size = batch_size

    def load_model(self) -> Any:
        from models import serving  # TensorFlow: only in the worker that runs the model

        return serving.load_model(self.model_uri)

    def run_inference(
        self,
        batch: Sequence[np.ndarray],
        model: Any,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[PredictionResult]:
        from models.serving import predict_tiles

        tiles = np.stack(batch)
        start = time.perf_counter()
        probabilities = predict_tiles(model, tiles)
        Metrics.counter(METRICS_NAMESPACE, "forward_us").inc(
            int((time.perf_counter() - start) * 1e6)
        )
        return [PredictionResult(tile, probabilities[i]) for i, tile in enumerate(batch)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(tile.nbytes for tile in batch)

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE


def predict_image(
    image: np.ndarray,
    model: Any,
    *,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = 4,
) -> tiling.TileBlender:
    """In-process prediction of one decoded scene (no Beam): tiles → batches → blended stitch.

    The same handler, tiling and blending as the Beam job; for notebooks, tests and checks.
    """
    handler = KerasSegmentationHandler("", batch_size)
    tiles = tiling.cut_tiles(image, tile, overlap)
    blender = tiling.TileBlender(image.shape[0], image.shape[1], tile, overlap, NUM_CLASSES)
    for start in range(0, len(tiles), batch_size):
        results = handler.run_inference(tiles[start : start + batch_size], model)
        for offset, result in enumerate(results):
            blender.add(start + offset, np.asarray(result.inference))
    return blender


# ---- Beam steps ------------------------------------------------------------------------------


class DecodeAndTile(beam.DoFn):
    """Scene → keyed uint8 tiles; an unreadable scene → one error record (tagged output)."""

    ERRORS = "errors"

    def __init__(self, tile: int, overlap: int) -> None:
        self.tile = tile
        self.overlap = overlap
        self.failed = Metrics.counter(METRICS_NAMESPACE, "scenes_failed")
        self.tiles = Metrics.counter(METRICS_NAMESPACE, "tiles")

    def process(self, scene: Scene) -> Iterator[Any]:
        try:
            if scene.problem:
                raise BadInputError(scene.uri, scene.problem)
            try:
                data = storage.read_bytes(scene.uri)
            except FileNotFoundError:
                raise BadInputError(scene.uri, "file vanished before it could be read") from None
            image = decode_scene(data, scene.uri)
        except BadInputError as error:
            self.failed.inc()
            record = ErrorRecord.from_error(error, STAGE, scene.scene_id)
            yield beam.pvalue.TaggedOutput(self.ERRORS, record.to_json())
            return
        height, width = image.shape[:2]
        for index, tile in enumerate(tiling.cut_tiles(image, self.tile, self.overlap)):
            self.tiles.inc()
            key: TileKey = (scene.scene_id, index, height, width)
            yield key, tile


def by_scene(
    keyed: tuple[TileKey, PredictionResult], tile: int, overlap: int
) -> tuple[str, tuple[int, int, int, Any]]:
    """Re-key a tile prediction by scene id, in the form that crosses the shuffle.

    Only the tile's part inside the scene is kept (a 2448² scene's last row and column of
    612² tiles are 58% padding), as float16: half the bytes of float32 for an absolute error of
    at most 2.4e-4 on a probability, which can only flip the argmax of a pixel whose two best
    classes are that close; the blend itself accumulates in float32. The input tile the
    prediction carried is dropped.
    """
    (scene_id, index, height, width), result = keyed
    probabilities = np.asarray(result.inference)
    inside = tiling.crop_to_scene(probabilities, height, width, tile, overlap, index)
    return scene_id, (index, height, width, inside.astype(SHUFFLE_DTYPE))


@dataclass(frozen=True)
class OutputOptions:
    output_uri: str
    tile: int
    overlap: int
    write_class_ids: bool = False
    write_probabilities: bool = False


def encode_mask_png(array: np.ndarray) -> bytes:
    """A mask or class-id array → PNG bytes (RGB stays RGB: DeepGlobe masks are RGB files)."""
    return imaging.encode_png(array, MASK_PNG_LEVEL, MASK_PNG_STRATEGY)


def write_scene_outputs(
    scene_id: str, blender: tiling.TileBlender, options: OutputOptions
) -> list[str]:
    """Write a stitched scene's files; the mask last, so its presence means "scene done"."""
    class_ids = blender.class_ids()
    written: list[str] = []
    if options.write_probabilities:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            probabilities=blender.probabilities().astype(np.float16),
            class_names=np.array(CLASS_NAMES),
        )
        uri = storage.join(options.output_uri, f"{scene_id}{PROBS_SUFFIX}")
        storage.write_bytes(uri, buffer.getvalue())
        written.append(uri)
    if options.write_class_ids:
        uri = storage.join(options.output_uri, f"{scene_id}{CLASSES_SUFFIX}")
        storage.write_bytes(uri, encode_mask_png(class_ids))
        written.append(uri)
    uri = storage.join(options.output_uri, mask_name(scene_id))
    storage.write_bytes(uri, encode_mask_png(encode_mask(class_ids)))
    written.append(uri)
    return written


class StitchAndWrite(beam.DoFn):
    """A scene's tile predictions → blended class probabilities → argmax → files."""

    def __init__(self, options: OutputOptions) -> None:
        self.options = options
        self.predicted = Metrics.counter(METRICS_NAMESPACE, "scenes_predicted")

    def process(self, element: tuple[str, Iterable[tuple[int, int, int, Any]]]) -> Iterator[str]:
        scene_id, tiles = element
        blender: tiling.TileBlender | None = None
        for index, height, width, probabilities in tiles:
            if blender is None:
                channels = probabilities.shape[-1]
                if channels != NUM_CLASSES:
                    raise ValueError(
                        f"model outputs {channels} channels, expected {NUM_CLASSES} "
                        f"({', '.join(CLASS_NAMES)})"
                    )
                blender = tiling.TileBlender(
                    height, width, self.options.tile, self.options.overlap, channels
                )
            blender.add(index, probabilities)
        if blender is None or not blender.complete:
            raise RuntimeError(f"scene {scene_id}: tiles missing before stitching")
        write_scene_outputs(scene_id, blender, self.options)
        self.predicted.inc()
        yield scene_id


class PredictScenes(beam.PTransform):
    """Scenes → written masks (main output: scene ids) and error JSON lines (``errors``)."""

    def __init__(self, model_file_uri: str, options: OutputOptions, batch_size: int) -> None:
        super().__init__()
        self.model_file_uri = model_file_uri
        self.options = options
        self.batch_size = batch_size

    def expand(self, scenes: beam.PCollection) -> dict[str, beam.PCollection]:
        decoded = scenes | "DecodeAndTile" >> beam.ParDo(
            DecodeAndTile(self.options.tile, self.options.overlap)
        ).with_outputs(DecodeAndTile.ERRORS, main="tiles")
        handler: KeyedModelHandler[TileKey, np.ndarray, PredictionResult, Any] = KeyedModelHandler(
            KerasSegmentationHandler(self.model_file_uri, self.batch_size)
        )
        written = (
            decoded.tiles
            | "RunInference" >> RunInference(handler)
            | "ByScene" >> beam.Map(by_scene, self.options.tile, self.options.overlap)
            | "GroupTiles" >> beam.GroupByKey()
            | "StitchAndWrite" >> beam.ParDo(StitchAndWrite(self.options))
        )
        return {"written": written, "errors": decoded[DecodeAndTile.ERRORS]}


# ---- running it ------------------------------------------------------------------------------


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
        wave_failed = _metric_total(result, "scenes_failed")
        predicted += _metric_total(result, "scenes_predicted")
        failed += wave_failed
        forward_us += _metric_total(result, "forward_us")
        load_ms += _metric_total(result, "load_model_latency_milli_secs", "distributions")
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
