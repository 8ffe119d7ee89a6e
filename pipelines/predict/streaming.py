"""Predict one region of a scene by windows: read a band of tiles, run the model, stitch, emit.

No Beam here: the job's steps, benchmarks and tests call :func:`predict_region` with a pixel
source and a prediction function. Per row of tiles of the region's grid (the scene's, or a
block's own: ``pipelines.core.tiling.grid_frame``):

    read one window (the row's tiles, edge rows reflect-padded by index, never materialised)
    → tiles whose in-scene pixels are all nodata are skipped (not run through the model)
    → the others in batches through ``predict`` → :class:`StreamingStitcher`
    → the rows that became final go to ``on_band`` (class ids, probabilities, validity)

so memory is one band of the region (≤ tile rows), one batch and the model, never the scene.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from pipelines.core.geo import PixelWindow
from pipelines.core.stitching import Band, StreamingStitcher, iter_tiles, tile_row_pixels
from pipelines.io.raster_read import RasterReader, read_window

PredictFn = Callable[[np.ndarray], np.ndarray]
# (band window, class ids (h, w) uint8, probabilities (h, w, C) or None, valid (h, w) bool)
BandSink = Callable[[PixelWindow, np.ndarray, np.ndarray | None, np.ndarray], None]


class PixelSource(Protocol):
    """RGB pixels and validity of a scene, one window at a time."""

    height: int
    width: int

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class ArraySource:
    """A scene already in memory (a decoded DeepGlobe JPEG/PNG) and which of its pixels hold
    data (None: all; a PNG's alpha 0 is no data, as a GeoTIFF's)."""

    image: np.ndarray
    valid: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.height, self.width = (int(v) for v in self.image.shape[:2])

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        rows = slice(window.row_off, window.row_stop)
        cols = slice(window.col_off, window.col_stop)
        if self.valid is None:
            return self.image[rows, cols], np.ones(window.shape, dtype=bool)
        return self.image[rows, cols], self.valid[rows, cols]


@dataclass
class RasterSource:
    """An open raster read by windows (GDAL), with its nodata/mask/alpha validity."""

    reader: RasterReader

    def __post_init__(self) -> None:
        self.height, self.width = self.reader.info.height, self.reader.info.width

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        return read_window(self.reader, window)


@dataclass
class RegionStats:
    """What predicting a region did; summed over blocks into a scene's record."""

    tiles_run: int = 0
    tiles_skipped_nodata: int = 0
    nodata_pixels: int = 0
    model_pixels: int = 0  # pixels the model ran over: tiles run x the planned tile's pixels
    forward_s: float = 0.0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def merge(self, other: RegionStats) -> RegionStats:
        return RegionStats(
            self.tiles_run + other.tiles_run,
            self.tiles_skipped_nodata + other.tiles_skipped_nodata,
            self.nodata_pixels + other.nodata_pixels,
            self.model_pixels + other.model_pixels,
            self.forward_s + other.forward_s,
            self.seconds + other.seconds,
        )


def predict_region(
    source: PixelSource,
    predict: PredictFn,
    on_band: BandSink,
    *,
    tile: int,
    overlap: int,
    channels: int,
    batch_size: int,
    region: PixelWindow | None = None,
    with_probabilities: bool = False,
) -> RegionStats:
    """Predict ``region`` (default: the whole scene) of ``source``; bands go to ``on_band``.

    ``predict`` maps uint8 tiles (N, tile, tile, 3) to probabilities (N, tile, tile, C).
    Raises what the source raises for an unreadable window (``BadInputError`` naming it).
    """
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    height, width = source.height, source.width
    stitcher = StreamingStitcher(height, width, tile, overlap, channels, region)
    region = stitcher.region
    stats = RegionStats()
    for row in stitcher.rows:
        window, rows, cols = tile_row_pixels(row, height, width, tile)
        pixels, valid = source.read(window)
        band = pixels[rows][:, cols]
        valid_band = valid[rows][:, cols]
        # A tile is skipped only when its pixels inside the scene are all nodata (its reflected
        # padding does not count: no output pixel comes from it).
        in_rows = min(tile, height - row.y)
        x0 = row.x_span[0]
        todo: list[tuple[int, np.ndarray]] = []
        for position, (_, view) in enumerate(iter_tiles(row, band, tile)):
            x = row.tiles[position][1]
            inside = valid_band[:in_rows, x - x0 : x - x0 + min(tile, width - x)]
            if inside.any():
                todo.append((position, view))
        results: dict[int, np.ndarray] = {}
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            t0 = time.perf_counter()
            probabilities = predict(np.stack([view for _, view in chunk]))
            stats.forward_s += time.perf_counter() - t0
            for (position, _), prob in zip(chunk, probabilities, strict=True):
                results[position] = prob
        stats.tiles_run += len(todo)
        stats.model_pixels += len(todo) * tile * tile
        stats.tiles_skipped_nodata += len(row.tiles) - len(todo)
        for position in range(len(row.tiles)):
            stitcher.add(results.pop(position, None))
        finished = stitcher.finish_row()
        if finished is not None:
            valid_out = _band_validity(finished, valid_band, row.y, x0)
            valid_count = int(np.count_nonzero(valid_out))
            stats.nodata_pixels += int(valid_out.size - valid_count)
            band_probabilities: np.ndarray | None = None
            if valid_count:
                ids = finished.class_ids()
                if with_probabilities:
                    band_probabilities = finished.probabilities()
            else:  # all nodata: no argmax, no division; the sinks write nothing for it
                ids = np.zeros(finished.window.shape, np.uint8)
                if with_probabilities:
                    band_probabilities = np.zeros_like(finished.canvas)
            on_band(finished.window, ids, band_probabilities, valid_out)
    stats.seconds = time.perf_counter() - started
    return stats


def _band_validity(band: Band, valid_band: np.ndarray, y: int, x0: int) -> np.ndarray:
    """Validity of a finished band, cut from the padded validity of the tile row just read.

    A finished band's rows lie in ``[y, y + tile)`` and inside the scene, and its columns inside
    the row's span, so padded and scene coordinates coincide there.
    """
    w = band.window
    return valid_band[w.row_off - y : w.row_stop - y, w.col_off - x0 : w.col_stop - x0]
