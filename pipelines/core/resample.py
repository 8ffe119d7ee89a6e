"""Resampling a raster between two grids over the same ground, by windows, bit-exactly.

Used where a scene's GSD is not the one wanted: ``preprocess --target-gsd`` (image and labels
to the target) and ``predict`` (a scene to the model's GSD, and its outputs back to the
scene's own grid). Pure NumPy.

**Separable taps.** Along each axis an output pixel ``i`` is a fixed weighted sum of input
pixels, ``out[i] = Σ_k weight[i, k] · in[index[i, k]]`` (:class:`Taps`), applied to rows, then
to columns. The sum runs over the same taps in the same order whatever window is computed, so
a window of the output computed from a window of the input is bit-identical to the same pixels
of the whole output: a scene resampled band by band (memory: one band) equals the scene
resampled at once, and a block of a block-parallel prediction equals the single-worker one.

**Methods** (per axis: the output has fewer pixels = down, more = up):

- ``area`` (down): the exact area average; output pixel ``i`` covers input ``[i·s, (i+1)·s)``,
  ``s = n_in / n_out``, each input pixel weighted by how much of it lies inside. What a
  coarser sensor would have recorded; no aliasing, unlike picking every s-th pixel.
- ``bilinear`` (up): the two nearest input centres, linearly (edges clamped).
- ``nearest``: the input pixel whose area holds the output pixel's centre (class maps up, and
  class maps back to a scene's grid: a class is never averaged into another).
- labels down: ``mode``, the class holding the largest share of the output pixel's area (the
  ``area`` taps on each class's indicator; ties go to the lower class id).

**Validity.** Pixels are averaged over valid input pixels only; an output pixel is valid when
any input pixel with weight in it is. So nodata never darkens an edge, and every valid input
pixel's nearest output pixel is valid (the one holding its centre has weight from it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.core.geo import PixelWindow
from pipelines.core.palette import NUM_CLASSES

METHODS = ("area", "bilinear", "nearest")
# Taps lighter than this are rounding noise at a footprint's edge (a float landing a hair past
# an integer): dropped, so they never make an output pixel valid on their own.
_MIN_WEIGHT = 1e-6


@dataclass(frozen=True)
class Taps:
    """One axis of a resampling from ``n_in`` to ``len(index)`` pixels (see the module doc).

    ``index`` (n_out, K) int64 into the input axis, ``weight`` (n_out, K) float32; unused taps
    have weight 0 and repeat a used index, so every index lies in the pixel's own input range.
    """

    n_in: int
    index: np.ndarray
    weight: np.ndarray
    method: str

    @property
    def n_out(self) -> int:
        return int(self.index.shape[0])

    def input_range(self, start: int = 0, stop: int | None = None) -> tuple[int, int]:
        """Input pixels ``[lo, hi)`` that output pixels ``[start, stop)`` read."""
        rows = self.index[start : self.n_out if stop is None else stop]
        return int(rows.min()), int(rows.max()) + 1

    def part(self, start: int, stop: int) -> Taps:
        """The taps of output pixels ``[start, stop)`` (indices still into the whole input)."""
        if not 0 <= start < stop <= self.n_out:
            raise ValueError(f"output range {start}..{stop} is outside 0..{self.n_out}")
        return Taps(self.n_in, self.index[start:stop], self.weight[start:stop], self.method)


def make_taps(n_in: int, n_out: int, method: str) -> Taps:
    """The taps resampling an axis of ``n_in`` pixels to ``n_out`` over the same extent."""
    if n_in <= 0 or n_out <= 0:
        raise ValueError(f"axis lengths must be positive, got {n_in} -> {n_out}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    i = np.arange(n_out, dtype=np.float64)
    if method == "nearest":
        # floor of the centre's input coordinate, (i + 0.5) * n_in / n_out, in integers.
        index = np.minimum(((2 * np.arange(n_out) + 1) * n_in) // (2 * n_out), n_in - 1)
        return Taps(n_in, index[:, None].astype(np.int64), np.ones((n_out, 1), np.float32), method)
    if method == "bilinear":
        centre = (i + 0.5) * n_in / n_out - 0.5
        low = np.floor(centre)
        frac = centre - low
        index = np.stack([low, low + 1], axis=1).clip(0, n_in - 1).astype(np.int64)
        weight = np.stack([1.0 - frac, frac], axis=1)
    else:  # area
        lo = i * n_in / n_out
        hi = (i + 1) * n_in / n_out
        first = np.floor(lo).astype(np.int64)
        width = math.ceil(n_in / n_out) + 1
        index = first[:, None] + np.arange(width)[None, :]
        overlap = np.minimum(index + 1, hi[:, None]) - np.maximum(index, lo[:, None])
        weight = np.clip(overlap, 0.0, None) * (n_out / n_in)
        inside = index < n_in
        weight = np.where(inside, weight, 0.0)
        index = np.where(inside, index, first[:, None])
    weight = np.where(weight < _MIN_WEIGHT, 0.0, weight)
    index = np.where(weight > 0, index, index[:, :1])
    return Taps(n_in, index.astype(np.int64), weight.astype(np.float32), method)


def image_method(n_in: int, n_out: int) -> str:
    """How an image axis is resampled: ``area`` down, ``bilinear`` up (``nearest`` = copy)."""
    return "area" if n_out < n_in else ("bilinear" if n_out > n_in else "nearest")


def label_method(n_in: int, n_out: int) -> str:
    """How a class axis is resampled: ``area`` shares down (the mode), ``nearest`` up."""
    return "area" if n_out < n_in else "nearest"


def apply_taps(array: np.ndarray, taps: Taps, axis: int, offset: int = 0) -> np.ndarray:
    """Resample ``array`` (float32) along ``axis``; its index 0 there is input pixel ``offset``.

    Terms are added in tap order, whatever part of the output ``taps`` covers (bit-exact
    windows, see the module doc).
    """
    shape = [1] * array.ndim
    shape[axis] = taps.n_out
    out: np.ndarray | None = None
    for k in range(taps.index.shape[1]):
        weight = taps.weight[:, k].reshape(shape)
        term = np.take(array, taps.index[:, k] - offset, axis=axis) * weight
        out = term if out is None else out + term
    assert out is not None
    return out


@dataclass(frozen=True)
class Regrid:
    """Resampling between a source grid and a target grid over the same ground.

    ``rows``/``cols`` are the taps for pixel values (image or probabilities), chosen per axis by
    :func:`image_method` unless a method is forced; ``label_rows``/``label_cols`` those for
    class ids (:func:`label_method`).
    """

    source: tuple[int, int]
    target: tuple[int, int]
    rows: Taps
    cols: Taps
    label_rows: Taps
    label_cols: Taps

    @classmethod
    def between(
        cls, source: tuple[int, int], target: tuple[int, int], method: str | None = None
    ) -> Regrid:
        (h, w), (th, tw) = source, target
        return cls(
            source,
            target,
            make_taps(h, th, method or image_method(h, th)),
            make_taps(w, tw, method or image_method(w, tw)),
            make_taps(h, th, label_method(h, th)),
            make_taps(w, tw, label_method(w, tw)),
        )

    def source_window(self, window: PixelWindow, labels: bool = False) -> PixelWindow:
        """The source pixels the target ``window`` is computed from."""
        rows, cols = (self.label_rows, self.label_cols) if labels else (self.rows, self.cols)
        r0, r1 = rows.input_range(window.row_off, window.row_stop)
        c0, c1 = cols.input_range(window.col_off, window.col_stop)
        return PixelWindow(r0, c0, r1 - r0, c1 - c0)

    def pixels(
        self,
        window: PixelWindow,
        pixels: np.ndarray,
        valid: np.ndarray,
        source: PixelWindow,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The target ``window`` of an image: (h, w, C) uint8 and validity (h, w) bool.

        ``pixels``/``valid`` are the ``source`` window of the source grid (at least
        :meth:`source_window`). Averages run over valid pixels only.
        """
        rows = self.rows.part(window.row_off, window.row_stop)
        cols = self.cols.part(window.col_off, window.col_stop)
        weight = valid.astype(np.float32)
        values = pixels.astype(np.float32) * weight[..., None]
        total = apply_taps(apply_taps(values, rows, 0, source.row_off), cols, 1, source.col_off)
        mass = apply_taps(apply_taps(weight, rows, 0, source.row_off), cols, 1, source.col_off)
        out_valid = mass > 0
        mean = total / np.where(out_valid, mass, 1.0)[..., None]
        return np.clip(np.rint(mean), 0, 255).astype(np.uint8), out_valid

    def values(self, window: PixelWindow, values: np.ndarray, source: PixelWindow) -> np.ndarray:
        """The target ``window`` of float values (probabilities), (h, w, C) float32."""
        rows = self.rows.part(window.row_off, window.row_stop)
        cols = self.cols.part(window.col_off, window.col_stop)
        array = values.astype(np.float32, copy=False)
        return apply_taps(apply_taps(array, rows, 0, source.row_off), cols, 1, source.col_off)

    def labels(
        self,
        window: PixelWindow,
        class_ids: np.ndarray,
        source: PixelWindow,
        classes: int = NUM_CLASSES,
    ) -> np.ndarray:
        """The target ``window`` of a class map, (h, w) uint8: the mode down, nearest up."""
        rows = self.label_rows.part(window.row_off, window.row_stop)
        cols = self.label_cols.part(window.col_off, window.col_stop)
        if rows.method == cols.method == "nearest":
            picked = np.take(class_ids, rows.index[:, 0] - source.row_off, axis=0)
            return np.take(picked, cols.index[:, 0] - source.col_off, axis=1).astype(np.uint8)
        best = np.zeros(window.shape, np.uint8)
        best_share = np.full(window.shape, -1.0, np.float32)
        for c in range(classes):
            indicator = (class_ids == c).astype(np.float32)
            share = apply_taps(
                apply_taps(indicator, rows, 0, source.row_off), cols, 1, source.col_off
            )
            better = share > best_share
            best[better] = c
            best_share = np.where(better, share, best_share)
        return best


def target_shape(height: int, width: int, scale_y: float, scale_x: float) -> tuple[int, int]:
    """The target grid of a source ``height`` x ``width`` whose pixels grow by ``scale``.

    ``scale`` = target GSD / source GSD per axis (2 = half the pixels); the side is rounded,
    at least 1 px, so the target covers the source's extent at the nearest whole pixel count.
    """
    if scale_y <= 0 or scale_x <= 0:
        raise ValueError(f"scales must be positive, got {scale_y}, {scale_x}")
    return max(1, round(height / scale_y)), max(1, round(width / scale_x))


def strips(height: int, width: int, rows: int) -> list[PixelWindow]:
    """Full-width windows of at most ``rows`` rows: how a whole array is resampled in bounded
    memory (the float intermediates of one strip, never of the scene)."""
    return [PixelWindow(r, 0, min(rows, height - r), width) for r in range(0, height, rows)]
