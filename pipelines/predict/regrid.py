"""Predicting a scene on the model's grid and writing it on the scene's own, by windows.

A scene whose GSD is not the model's is predicted at the model's GSD: a model trained at 1 m
sees 1 m pixels, whatever the imagery. Its outputs are then resampled back, so every output
lies on the input's own grid (its size, transform and CRS; nothing downstream learns a second
grid). All of it streams through :func:`pipelines.predict.streaming.predict_region`:

    scene (its own grid) → :class:`ResampledSource` (reads a scene window, resamples it to a
    window of the model grid: area average down, bilinear up) → tiles → model → stitch →
    bands of the model grid → :class:`BackToScene` (classes by nearest, probabilities by
    bilinear, validity the scene's own) → the scene's sink, band by band

Memory stays bounded by a band: the model-grid band the stitch holds, the model rows a scene
band needs (at most one band plus a row) and one scene window. Every step computes a pixel
from the same pixels in the same order whatever window it runs on
(:mod:`pipelines.core.resample`), so the output equals resampling the whole scene, predicting
it, and resampling the whole map back, and a block of a block-parallel scene equals the same
pixels of the single-worker path.

A scene pixel is nodata in the output exactly where the input pixel is nodata. (An input pixel
that is valid always has a valid model pixel under it: the model pixel holding its centre has
weight from it.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.core.geo import PixelWindow
from pipelines.core.gsd import Gsd, format_gsd
from pipelines.core.resample import Regrid, Taps, apply_taps, make_taps, target_shape
from pipelines.predict.streaming import (
    BandSink,
    PixelSource,
    PredictFn,
    RegionStats,
    predict_region,
)

# How each output reaches the scene's grid (recorded in the scene's done-record).
CLASSES_BACK = "nearest"
PROBABILITIES_BACK = "bilinear"


@dataclass(frozen=True)
class ModelGrid:
    """A scene's grid at the model's GSD, and the taps between it and the scene's own grid."""

    scene_gsd: Gsd
    model_gsd: float
    scene: tuple[int, int]  # (height, width) of the scene
    model: tuple[int, int]  # (height, width) of the scene at the model's GSD
    to_model: Regrid  # scene → model grid (image: area down, bilinear up)
    classes_rows: Taps  # model → scene, nearest
    classes_cols: Taps
    probs_rows: Taps  # model → scene, bilinear
    probs_cols: Taps

    @classmethod
    def of(cls, height: int, width: int, scene_gsd: Gsd, model_gsd: float) -> ModelGrid:
        model = target_shape(height, width, model_gsd / scene_gsd.y, model_gsd / scene_gsd.x)
        return cls(
            scene_gsd,
            model_gsd,
            (height, width),
            model,
            Regrid.between((height, width), model),
            make_taps(model[0], height, CLASSES_BACK),
            make_taps(model[1], width, CLASSES_BACK),
            make_taps(model[0], height, PROBABILITIES_BACK),
            make_taps(model[1], width, PROBABILITIES_BACK),
        )

    def model_region(self, region: PixelWindow, probabilities: bool) -> PixelWindow:
        """The model-grid pixels the scene ``region``'s outputs are resampled from."""
        taps = [(self.classes_rows, self.classes_cols)]
        if probabilities:
            taps.append((self.probs_rows, self.probs_cols))
        rows = [t[0].input_range(region.row_off, region.row_stop) for t in taps]
        cols = [t[1].input_range(region.col_off, region.col_stop) for t in taps]
        r0, r1 = min(r[0] for r in rows), max(r[1] for r in rows)
        c0, c1 = min(c[0] for c in cols), max(c[1] for c in cols)
        return PixelWindow(r0, c0, r1 - r0, c1 - c0)

    def describe(self) -> dict[str, Any]:
        """What the scene's record says about its resampling."""
        methods = {self.to_model.rows.method, self.to_model.cols.method}
        return {
            "scene_m": [self.scene_gsd.x, self.scene_gsd.y],
            "scene_source": self.scene_gsd.source,
            "model_m": self.model_gsd,
            "resampled": True,
            "model_grid": list(self.model),
            "image": "/".join(sorted(methods)),
            "classes": CLASSES_BACK,
            "probabilities": PROBABILITIES_BACK,
            "note": (
                f"predicted at the model's {format_gsd(self.model_gsd)} m on a "
                f"{self.model[0]}x{self.model[1]} grid, written on the input's own "
                f"{self.scene[0]}x{self.scene[1]} grid"
            ),
        }


@dataclass
class ResampledSource:
    """A scene read through its model grid: a :class:`PixelSource` of model-grid windows."""

    source: PixelSource
    grid: ModelGrid

    def __post_init__(self) -> None:
        self.height, self.width = self.grid.model

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        regrid = self.grid.to_model
        src = regrid.source_window(window)
        pixels, valid = self.source.read(src)
        return regrid.pixels(window, pixels, valid, src)


class BackToScene:
    """A band sink on the model grid that hands the scene's sink bands of the scene's grid.

    Model rows are kept until no scene row of ``region`` needs them; a scene band is emitted as
    soon as every model row it reads has arrived. ``nodata_pixels`` counts the scene pixels
    written as nodata (the input's own).
    """

    def __init__(
        self,
        sink: BandSink,
        grid: ModelGrid,
        source: PixelSource,
        region: PixelWindow,
        model_region: PixelWindow,
        probabilities: bool,
    ) -> None:
        self.sink, self.grid, self.source = sink, grid, source
        self.region, self.model_region = region, model_region
        self.probabilities = probabilities
        rows = [grid.classes_rows] + ([grid.probs_rows] if probabilities else [])
        span = slice(region.row_off, region.row_stop)
        # The highest and lowest model row each scene row of the region reads (non-decreasing).
        self._need_max = np.max([t.index[span].max(axis=1) for t in rows], axis=0)
        self._need_min = np.min([t.index[span].min(axis=1) for t in rows], axis=0)
        self._next = 0  # region row (relative) to emit next
        self._top = model_region.row_off  # model row of the buffer's first row
        self._ids = np.zeros((0, model_region.width), np.uint8)
        self._probs = np.zeros((0, model_region.width, 0), np.float32)
        self.nodata_pixels = 0

    def __call__(
        self,
        window: PixelWindow,
        class_ids: np.ndarray,
        probabilities: np.ndarray | None,
        valid: np.ndarray,
    ) -> None:
        if window.row_off != self._top + len(self._ids):
            raise ValueError(f"model band at row {window.row_off} arrived out of order")
        self._ids = np.concatenate([self._ids, class_ids])
        if self.probabilities and probabilities is not None:
            self._probs = (
                probabilities.copy()
                if self._probs.shape[0] == 0
                else np.concatenate([self._probs, probabilities])
            )
        self._emit()

    @property
    def done(self) -> bool:
        return self._next == self.region.height

    def _emit(self) -> None:
        bottom = self._top + len(self._ids)  # first model row not yet here
        stop = int(np.searchsorted(self._need_max, bottom, side="left"))
        if stop <= self._next:
            return
        start, self._next = self._next, stop
        reg = self.region
        window = PixelWindow(reg.row_off + start, reg.col_off, stop - start, reg.width)
        rows = self.grid.classes_rows.part(window.row_off, window.row_stop)
        cols = self.grid.classes_cols.part(window.col_off, window.col_stop)
        picked = np.take(self._ids, rows.index[:, 0] - self._top, axis=0)
        class_ids = np.take(picked, cols.index[:, 0] - self.model_region.col_off, axis=1)
        probabilities = None
        if self.probabilities:
            prow = self.grid.probs_rows.part(window.row_off, window.row_stop)
            pcol = self.grid.probs_cols.part(window.col_off, window.col_stop)
            probabilities = apply_taps(
                apply_taps(self._probs, prow, 0, self._top), pcol, 1, self.model_region.col_off
            )
        _, valid = self.source.read(window)
        self.nodata_pixels += int(valid.size - np.count_nonzero(valid))
        self.sink(window, class_ids, probabilities, valid)
        # Drop the model rows no later scene row reads.
        keep_from = int(self._need_min[stop]) if stop < reg.height else bottom
        drop = max(0, min(keep_from, bottom) - self._top)
        self._ids = self._ids[drop:]
        if self.probabilities:
            self._probs = self._probs[drop:]
        self._top += drop


def predict_on_model_grid(
    source: PixelSource,
    predict: PredictFn,
    on_band: BandSink,
    grid: ModelGrid,
    *,
    tile: int,
    overlap: int,
    channels: int,
    batch_size: int,
    region: PixelWindow | None = None,
    with_probabilities: bool = False,
) -> RegionStats:
    """:func:`predict_region` of ``region`` (scene grid) through the model grid: the same
    arguments, with ``on_band`` receiving bands of the scene's own grid."""
    region = region or PixelWindow(0, 0, source.height, source.width)
    model_region = grid.model_region(region, with_probabilities)
    back = BackToScene(on_band, grid, source, region, model_region, with_probabilities)
    stats = predict_region(
        ResampledSource(source, grid),
        predict,
        back,
        tile=tile,
        overlap=overlap,
        channels=channels,
        batch_size=batch_size,
        region=model_region,
        with_probabilities=with_probabilities,
    )
    if not back.done:
        raise RuntimeError(f"model grid bands ended before scene row {back.region.row_off}")
    stats.nodata_pixels = back.nodata_pixels
    return stats
