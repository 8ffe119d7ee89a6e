"""The predict job's Beam steps, and :class:`PredictScenes`, the composite that chains them.

Per scene::

    Scene → DecodeAndTile (bad scenes → ``errors`` output) → keyed uint8 tiles
          → RunInference(KerasSegmentationHandler) → by_scene (crop, float16)
          → GroupByKey → StitchAndWrite (blend, argmax, files) → scene id

A tile's key carries everything the stitch needs (scene id, tile index, scene height and
width), so no side input or second pass over the scenes is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference

from pipelines.core import tiling
from pipelines.core.errors import BadInputError, ErrorRecord
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.io import storage
from pipelines.io.scenes import Scene, decode_scene
from pipelines.predict.handler import METRICS_NAMESPACE, KerasSegmentationHandler
from pipelines.predict.outputs import OutputOptions, write_scene_outputs

STAGE = "predict"  # the stage named in error records and error file names
SCENES_FAILED = "scenes_failed"
SCENES_PREDICTED = "scenes_predicted"
TILES = "tiles"
SHUFFLE_DTYPE = np.float16  # tile probabilities on their way to the stitch (see by_scene)

# (scene id, tile index, scene height, scene width): everything the stitch needs, in the key.
TileKey = tuple[str, int, int, int]


class DecodeAndTile(beam.DoFn):
    """Scene → keyed uint8 tiles; an unreadable scene → one error record (tagged output)."""

    ERRORS = "errors"

    def __init__(self, tile: int, overlap: int) -> None:
        self.tile = tile
        self.overlap = overlap
        self.failed = Metrics.counter(METRICS_NAMESPACE, SCENES_FAILED)
        self.tiles = Metrics.counter(METRICS_NAMESPACE, TILES)

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


class StitchAndWrite(beam.DoFn):
    """A scene's tile predictions → blended class probabilities → argmax → files."""

    def __init__(self, options: OutputOptions) -> None:
        self.options = options
        self.predicted = Metrics.counter(METRICS_NAMESPACE, SCENES_PREDICTED)

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
