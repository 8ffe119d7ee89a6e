"""Streaming stitch: blend tile predictions row of tiles by row of tiles, keeping only a band.

:class:`pipelines.core.tiling.TileBlender` holds a whole scene's (H, W, C) canvas, so memory grows
with the scene. Here tiles arrive in the tile grid's row-major order and, once a row of tiles is
in, every scene row above the next tile row's origin can receive no more contributions: it is
final and is handed out (:class:`Band`) and dropped. What is held is one band of at most
``tile`` rows of the region's width, whatever the scene's height.

A *region* restricts the stitch to a window of the scene (one block of a block-parallel run): the
stitcher lays its own tile grid over the block widened by half the overlap on its inner sides
(``tiling.grid_frame``; the tile planned for that frame, ``tiling.plan_region_tile``) and keeps
only the region's pixels: a hard cut at block borders, so no tile is run by two blocks. The
whole-scene stitch (no region) is the grid over the whole scene, bit-identical to
:class:`~pipelines.core.tiling.TileBlender`; a block's pixels equal it for a model whose
receptive field is within the blend margin (tested), and differ beside block borders for deeper
ones (``tiling.grid_frame`` says by what).

Edge tiles read the scene reflect-padded past its bottom and right border (as
``tiling.pad_to_grid``); the same padding is available without materialising it through
:func:`reflect_coords`, which maps each padded coordinate to the scene coordinate it copies
(NumPy's reflect rule, applied per axis).

Tiles may be skipped (``None``: entirely nodata); their pixels then get no weight and come out
with probability 0, and the caller marks them nodata.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipelines.core.geo import PixelWindow
from pipelines.core.tiling import grid_frame, tile_origins, tile_weights


def reflect_coords(length: int, start: int, stop: int) -> np.ndarray:
    """Scene coordinate of each padded coordinate ``start..stop`` along a side of ``length``,
    (stop - start,) int64: itself inside the scene, NumPy's reflection past its far edge.

    Over a whole-scene grid's extent (``tiling.padded_extent``), indexing an image with it per
    axis equals ``tiling.pad_to_grid(image)`` (NumPy pads axis by axis, so the 2-D reflection is
    the product of the 1-D ones); a block's grid may reach further, and reflects the same way.
    """
    pad = max(0, stop - length)
    return np.pad(np.arange(length, dtype=np.int64), (0, pad), mode="reflect")[start:stop]


@dataclass(frozen=True)
class TileRow:
    """One row of tiles that touches the region: its origin row and (grid index, x) per tile."""

    y: int
    tiles: tuple[tuple[int, int], ...]

    @property
    def x_span(self) -> tuple[int, int]:
        """Padded columns ``[start, stop)`` the row's tiles cover."""
        return self.tiles[0][1], self.tiles[-1][1]


@dataclass
class Band:
    """Finished rows of the region: the weighted sums and weights of their tiles.

    ``window`` is in scene coordinates. ``canvas`` is (h, w, C) float32 of ``Σ p·weight``,
    ``weight`` (h, w) of ``Σ weight``; a pixel no tile reached has weight 0.
    """

    window: PixelWindow
    canvas: np.ndarray
    weight: np.ndarray

    def class_ids(self) -> np.ndarray:
        """Argmax (h, w) uint8; the weights are positive, so no division is needed."""
        return np.argmax(self.canvas, axis=-1).astype(np.uint8)

    def probabilities(self) -> np.ndarray:
        """Blended probabilities (h, w, C) float32; 0 where no tile contributed."""
        weight = self.weight[..., None]
        return np.divide(
            self.canvas, weight, out=np.zeros_like(self.canvas), where=weight > 0
        ).astype(np.float32)


class StreamingStitcher:
    """Blends a region's tiles row by row, handing out finished rows as :class:`Band`s.

    Usage: for each ``row`` in :attr:`rows`, call :meth:`add` for its tiles (in order, or
    ``None`` for a skipped tile), then :meth:`finish_row`, which returns the band of rows that
    became final (possibly none). Memory: one (≤ tile, region width, C) float32 band.
    """

    def __init__(
        self,
        height: int,
        width: int,
        tile: int,
        overlap: int,
        channels: int,
        region: PixelWindow | None = None,
    ) -> None:
        region = PixelWindow(0, 0, height, width) if region is None else region
        if not region.fits(height, width):
            raise ValueError(
                f"region ({region.describe()}) reaches past the {height}x{width} scene"
            )
        self.height, self.width = height, width
        self.tile, self.overlap, self.channels = tile, overlap, channels
        self.region = region
        self.frame = frame = grid_frame(height, width, region, overlap)
        ys = [frame.row_off + y for y in tile_origins(frame.height, tile, overlap)]
        xs = [frame.col_off + x for x in tile_origins(frame.width, tile, overlap)]
        touching_x = [
            (i, x) for i, x in enumerate(xs) if x < region.col_stop and x + tile > region.col_off
        ]
        self.rows: list[TileRow] = [
            TileRow(y, tuple((r * len(xs) + i, x) for i, x in touching_x))
            for r, y in enumerate(ys)
            if y < region.row_stop and y + tile > region.row_off
        ]
        self._row = 0  # index into self.rows of the row being filled
        self._added = 0
        self._top = region.row_off  # first row not handed out yet
        self._canvas = np.zeros((tile, region.width, channels), np.float32)
        self._weight = np.zeros((tile, region.width), np.float32)

    @property
    def tile_count(self) -> int:
        return sum(len(row.tiles) for row in self.rows)

    @property
    def done(self) -> bool:
        return self._row == len(self.rows)

    def add(self, probabilities: np.ndarray | None) -> None:
        """The next tile of the current row, (tile, tile, C); ``None`` for a skipped tile."""
        if self.done:
            raise ValueError("all tile rows are already stitched")
        row = self.rows[self._row]
        if self._added >= len(row.tiles):
            raise ValueError(f"tile row at y={row.y} has only {len(row.tiles)} tiles")
        _, x = row.tiles[self._added]
        self._added += 1
        if probabilities is None:
            return
        if probabilities.shape != (self.tile, self.tile, self.channels):
            raise ValueError(
                f"tile has shape {probabilities.shape}, "
                f"expected {(self.tile, self.tile, self.channels)}"
            )
        reg = self.region
        # The tile's part inside both the scene and the region, in scene coordinates.
        r0, r1 = max(row.y, reg.row_off), min(row.y + self.tile, reg.row_stop)
        c0, c1 = max(x, reg.col_off), min(x + self.tile, reg.col_stop)
        frame = self.frame  # the weights of the tile's place in its own grid
        y_in, x_in = row.y - frame.row_off, x - frame.col_off
        weights = tile_weights(frame.height, frame.width, self.tile, self.overlap, y_in, x_in)
        ty, tx = slice(r0 - row.y, r1 - row.y), slice(c0 - x, c1 - x)
        by, bx = slice(r0 - self._top, r1 - self._top), slice(c0 - reg.col_off, c1 - reg.col_off)
        w = weights[ty, tx]
        self._canvas[by, bx] += probabilities[ty, tx] * w[..., None]
        self._weight[by, bx] += w

    def finish_row(self) -> Band | None:
        """Close the current row of tiles; the rows that are now final, or None."""
        if self.done:
            raise ValueError("all tile rows are already stitched")
        row = self.rows[self._row]
        if self._added != len(row.tiles):
            raise ValueError(
                f"tile row at y={row.y}: {self._added} of {len(row.tiles)} tiles added"
            )
        self._row += 1
        self._added = 0
        stop = self.region.row_stop if self.done else self.rows[self._row].y
        stop = min(stop, self.region.row_stop)
        if stop <= self._top:
            return None
        count = stop - self._top
        band = Band(
            PixelWindow(self._top, self.region.col_off, count, self.region.width),
            self._canvas[:count].copy(),
            self._weight[:count].copy(),
        )
        # Shift the rows still open to the top of the buffer; the freed rows start at zero.
        self._canvas[: self.tile - count] = self._canvas[count:]
        self._canvas[self.tile - count :] = 0
        self._weight[: self.tile - count] = self._weight[count:]
        self._weight[self.tile - count :] = 0
        self._top = stop
        return band


def tile_row_pixels(
    row: TileRow, height: int, width: int, tile: int
) -> tuple[PixelWindow, np.ndarray, np.ndarray]:
    """What to read for one row of tiles: the scene window, and row/col index maps into it.

    ``window_pixels[rows][:, cols]`` is the padded scene's band ``[y, y+tile) x x_span``, so a
    reader fetches one bounded window per tile row (edge rows reflect inside it).
    """
    ry = reflect_coords(height, row.y, row.y + tile)
    x0, x_last = row.x_span
    rx = reflect_coords(width, x0, x_last + tile)
    r0, r1 = int(ry.min()), int(ry.max()) + 1
    c0, c1 = int(rx.min()), int(rx.max()) + 1
    return PixelWindow(r0, c0, r1 - r0, c1 - c0), ry - r0, rx - c0


def iter_tiles(row: TileRow, band: np.ndarray, tile: int) -> Iterator[tuple[int, np.ndarray]]:
    """(global index, tile view) of each tile in a padded band read for ``row``."""
    x0 = row.x_span[0]
    for index, x in row.tiles:
        yield index, band[:, x - x0 : x - x0 + tile]
