"""A predicted scene's files, in one of two formats, written as the stitch hands out bands.

``png`` (the default for DeepGlobe JPEG/PNG scenes, and for rasters without a georeference)::

    {id}_probs.npz    blended class probabilities, float16 (H, W, 7), with the class names
    {id}_classes.png  class ids 0..6, one channel
    {id}_mask.png     DeepGlobe colours, RGB (input nodata: the "unknown" colour)

``cog`` (the default for georeferenced rasters)::

    {id}_mask.tif     COG: uint8 class ids, DeepGlobe color table, nodata 255, the input's
                      exact CRS/transform/size, 512² tiles, overviews
    {id}_probs.tif    COG: one uint8 band per class (0..255 for 0..1), internal nodata mask

Every file is written whole or not at all; the scene's done-record (``records.commit``) comes
after all of them. No Beam here: the job's steps call these sinks band by band.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Mapping

import numpy as np

from pipelines.core.geo import PixelWindow
from pipelines.core.naming import CLASSES_SUFFIX, MASK_SUFFIX, PROBS_SUFFIX, mask_name
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES, UNKNOWN, encode_mask
from pipelines.io import imaging, storage
from pipelines.io.raster_read import RasterInfo
from pipelines.io.raster_write import ClassMapWriter, ProbabilityWriter
from pipelines.predict.options import PredictOptions

MASK_COG_SUFFIX = "_mask.tif"
PROBS_COG_SUFFIX = "_probs.tif"

# Masks are flat colour regions: zlib's run-length strategy writes them ~40% faster than the
# default deflate and smaller (a 2448² synthetic mask: 45 KB vs 127 KB at level 1).
MASK_PNG_LEVEL = 1
MASK_PNG_STRATEGY = zlib.Z_RLE
PROBS_DTYPE = np.float16  # half the bytes of float32; ample for a probability map


def output_names(scene_id: str, fmt: str, class_ids: bool, probabilities: bool) -> list[str]:
    """The files a scene's outputs consist of, the mask last."""
    if fmt == "cog":
        names = [f"{scene_id}{PROBS_COG_SUFFIX}"] if probabilities else []
        return [*names, f"{scene_id}{MASK_COG_SUFFIX}"]
    names = [f"{scene_id}{PROBS_SUFFIX}"] if probabilities else []
    if class_ids:
        names.append(f"{scene_id}{CLASSES_SUFFIX}")
    return [*names, f"{scene_id}{MASK_SUFFIX}"]


def encode_mask_png(array: np.ndarray) -> bytes:
    """A mask or class-id array → PNG bytes (RGB stays RGB: DeepGlobe masks are RGB files)."""
    return imaging.encode_png(array, MASK_PNG_LEVEL, MASK_PNG_STRATEGY)


def encode_probabilities(probabilities: np.ndarray) -> bytes:
    """(H, W, classes) probabilities → ``.npz`` bytes: ``probabilities`` and ``class_names``."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        probabilities=probabilities.astype(PROBS_DTYPE),
        class_names=np.array(CLASS_NAMES),
    )
    return buffer.getvalue()


class PngSceneSink:
    """Collects a scene's bands into whole-scene arrays, then writes the PNG outputs.

    PNG has no windowed writer, so this format holds the scene's class ids (1 byte a pixel)
    and, on request, its probabilities; it is meant for DeepGlobe-sized scenes. Input nodata
    pixels get the "unknown" class.
    """

    def __init__(
        self, scene_id: str, height: int, width: int, output_uri: str, options: PredictOptions
    ) -> None:
        self.scene_id, self.output_uri, self.options = scene_id, output_uri, options
        self.height, self.width = height, width
        self.class_ids = np.zeros((height, width), np.uint8)
        self.probabilities = (
            np.zeros((height, width, NUM_CLASSES), np.float32) if options.probabilities else None
        )

    def __call__(
        self,
        window: PixelWindow,
        class_ids: np.ndarray,
        probabilities: np.ndarray | None,
        valid: np.ndarray,
    ) -> None:
        rows = slice(window.row_off, window.row_stop)
        cols = slice(window.col_off, window.col_stop)
        self.class_ids[rows, cols] = np.where(valid, class_ids, np.uint8(UNKNOWN))
        if self.probabilities is not None and probabilities is not None:
            self.probabilities[rows, cols] = probabilities

    def finish(self) -> list[str]:
        out = self.output_uri
        written: list[str] = []
        if self.probabilities is not None:
            uri = storage.join(out, f"{self.scene_id}{PROBS_SUFFIX}")
            storage.write_bytes(uri, encode_probabilities(self.probabilities))
            written.append(uri)
        if self.options.class_ids:
            uri = storage.join(out, f"{self.scene_id}{CLASSES_SUFFIX}")
            storage.write_bytes(uri, encode_mask_png(self.class_ids))
            written.append(uri)
        uri = storage.join(out, mask_name(self.scene_id))
        storage.write_bytes(uri, encode_mask_png(encode_mask(self.class_ids)))
        written.append(uri)
        return written

    def close(self) -> None:
        """Nothing to clean up: nothing is written before :meth:`finish`."""


class CogSceneSink:
    """Writes a scene's bands into the class-map COG (and the probability COG) as they come."""

    def __init__(
        self,
        scene_id: str,
        info: RasterInfo,
        output_uri: str,
        options: PredictOptions,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        out = output_uri
        self.mask_uri = storage.join(out, f"{scene_id}{MASK_COG_SUFFIX}")
        self.probs_uri = storage.join(out, f"{scene_id}{PROBS_COG_SUFFIX}")
        self.height, self.width = info.height, info.width
        # Both COGs carry their provenance (``tags``) inside, the mask its class names too.
        self.mask = ClassMapWriter(self.mask_uri, info, tags=tags)
        self.probs = (
            ProbabilityWriter(self.probs_uri, info, tags=tags) if options.probabilities else None
        )

    def __call__(
        self,
        window: PixelWindow,
        class_ids: np.ndarray,
        probabilities: np.ndarray | None,
        valid: np.ndarray,
    ) -> None:
        self.mask.write_window(window, class_ids, valid)
        if self.probs is not None and probabilities is not None:
            self.probs.write_window(window, probabilities, valid)

    def finish(self) -> list[str]:
        """Publish the COGs; every file written (the mask's side-car of class names too)."""
        written = []
        if self.probs is not None:
            self.probs.finalize()
            written += self.probs.written
        self.mask.finalize()
        return written + self.mask.written

    def close(self) -> None:
        self.mask.close()
        if self.probs is not None:
            self.probs.close()


class BlockSink:
    """Collects one block's class ids (bounded by the block size) for its block GeoTIFF."""

    def __init__(self, block: PixelWindow) -> None:
        self.block = block
        self.class_ids = np.zeros(block.shape, np.uint8)
        self.valid = np.ones(block.shape, bool)

    def __call__(
        self,
        window: PixelWindow,
        class_ids: np.ndarray,
        probabilities: np.ndarray | None,
        valid: np.ndarray,
    ) -> None:
        rows = slice(window.row_off - self.block.row_off, window.row_stop - self.block.row_off)
        cols = slice(window.col_off - self.block.col_off, window.col_stop - self.block.col_off)
        self.class_ids[rows, cols] = class_ids
        self.valid[rows, cols] = valid
