"""Tiling geometry shared by preprocessing (patches) and inference (overlapping tiles).

Preprocessing edge rule: a side that is not a multiple of the patch size gets one more patch,
shifted inward so it ends exactly at the edge and overlaps its neighbour. No pixel is dropped
and none is invented (no padding), so every training pixel is real; a 2448 side gives 4
patches of 612 at 0, 612, 1224, 1836, and a 2500 side gives 5 (the last at 1888). A scene
smaller than one patch cannot be cut and is reported as bad input.
"""

from __future__ import annotations

import numpy as np

from pipelines.core.geo import PixelWindow

# The one set of tiling defaults: training patches (preprocess) and inference tiles (predict).
PATCH_SIZE = 612
# Inference tiles: ``TILE_SIZE`` is the LARGEST side a tile may have (``--tile``, the memory
# bound: the forward pass's memory grows with the pixels of a batch, batch x tile²); each scene
# gets the side ``plan_tile`` picks, a multiple of the model's stride that covers it with the
# fewest model pixels (``landcover bench predict`` prints the ratio; docs/performance.md).
# Measured: a fixed 612/64 ran 1.56 model px per scene px on a 2448² scene. With this budget a
# 2448² scene gets 3 x 3 tiles of 864 (1.12; the budget 768 gave 4 x 4 of 672, 1.21), a 16384²
# scene 880 (1.15; the budget 864 gave 848, 1.18) and its blocks of 4096 880 or 896 (1.19;
# 1.21 within 864). One 896² tile's forward pass at the default width adds 1,062 MB RSS
# (``landcover bench predict --cases forward --tile 896``; 894 MB at 864) and a 2448² JPEG,
# which still plans 864, peaked at 2,048 MB: inside the 2.5 GB bound at a batch of 1.
TILE_SIZE = 896
TILE_OVERLAP = 64
TILE_BATCH_SIZE = 1  # tiles per forward pass in batch inference

# Test-time augmentation: which dihedral transforms of a tile the model sees. Each transform is
# (k quarter-turns, flip left-right first); its inverse is applied to the prediction before the
# probabilities are averaged, so every prediction is back in the tile's own orientation.
TTA_TRANSFORMS: dict[str, tuple[tuple[int, bool], ...]] = {
    "none": ((0, False),),
    # the four flips: identity, left-right, up-down (= rot180 of left-right), both (= rot180)
    "flip": ((0, False), (0, True), (2, True), (2, False)),
    "d4": tuple((k, flip) for flip in (False, True) for k in range(4)),
}
TTA_MODES = tuple(TTA_TRANSFORMS)


def patch_origins(length: int, patch: int) -> list[int]:
    """Start offsets along one side: a regular grid, the last one flush with the edge."""
    if patch <= 0:
        raise ValueError(f"patch size must be positive, got {patch}")
    if length < patch:
        raise ValueError(f"side of {length} px is smaller than the patch size {patch}")
    count = -(-length // patch)
    return [min(i * patch, length - patch) for i in range(count)]


def patch_grid(height: int, width: int, patch: int) -> list[tuple[int, int]]:
    """(y, x) origins of every patch, row-major."""
    return [(y, x) for y in patch_origins(height, patch) for x in patch_origins(width, patch)]


# ---- inference tiling ------------------------------------------------------------------------
#
# Inference cuts a scene of any size into overlapping tiles of a fixed size, so batches have one
# shape and the model sees the same context size it was trained on. Origins step by
# ``stride = tile - overlap`` from 0 until a tile reaches the far edge; the last tile may run past
# the edge, and the scene is reflect-padded once (bottom and right) to the grid's extent, so edge
# tiles are full tiles of plausible pixels (zeros would look like a black border, a texture the
# model never saw). A scene smaller than one tile is one padded tile.
#
# Stitching blends the overlapping tiles' class probabilities with a weight window that is a
# partition of unity: along each axis a tile's weight falls from 1 to 0 across the overlap with
# its neighbour while the neighbour's rises in exact complement, so the weights of all tiles sum
# to 1 at every pixel and no seam can show in the blend. Two choices inside the overlap:
#
# - a MARGIN of ``overlap // 4`` px at an inner tile edge gets weight 0: there a network with
#   ``same`` padding sees zeros instead of the neighbouring pixels, so its outputs are the least
#   trustworthy of the tile; the neighbour, which sees real context there, takes over. Any model
#   whose receptive field reaches no further than the margin therefore stitches to exactly what
#   it would output on the whole (padded) scene at once; deeper ones get a smooth cross-fade.
# - between the two margins the weights cross-fade on a raised cosine (``sin²``), smooth where
#   a linear ramp has kinks.
#
# Edges that lie on the scene border (or on the padded extent beyond it) have no neighbour and
# are never tapered, so border pixels keep full weight: every pixel's total weight is 1 (> 0).
# This needs ``overlap <= tile // 2`` so a pixel sits in the overlap of at most two tiles per axis.


def _check_tile_args(tile: int, overlap: int) -> None:
    if tile <= 0:
        raise ValueError(f"tile size must be positive, got {tile}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap must be in 0..tile//2 = 0..{tile // 2}, got {overlap}")


def tile_origins(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of inference tiles along one side: 0, stride, 2·stride, … until covered."""
    _check_tile_args(tile, overlap)
    if length <= 0:
        raise ValueError(f"side must be positive, got {length}")
    stride = tile - overlap
    count = 1 + max(0, -(-(length - tile) // stride))
    return [i * stride for i in range(count)]


def model_pixels_per_scene_pixel(height: int, width: int, tile: int, overlap: int) -> float:
    """Pixels the model runs over per scene pixel (overlap and edge padding are the excess).

    612/64 on a 2448² scene: 25 tiles of 612² → 1.5625.
    """
    tiles = len(tile_origins(height, tile, overlap)) * len(tile_origins(width, tile, overlap))
    return tiles * tile * tile / (height * width)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tile_candidates(length: int, budget: int, overlap: int, multiple: int = 1) -> list[int]:
    """Tile sides worth trying along one side of ``length``: for each count n of tiles, the
    smallest side whose n tiles (overlapping by ``overlap``) cover it,
    ``ceil((length + (n-1)·overlap) / n)``, rounded up to ``multiple`` (the model's stride: a
    side off the multiple is padded up to it inside the model, model pixels spent on nothing).

    Only sides within ``budget`` and at least ``2·overlap`` (the blend's rule) are kept, from the
    fewest tiles up; the budget rounded down to the multiple is the fallback when none fits.
    """
    multiple = max(1, multiple)
    largest = max(budget // multiple * multiple, multiple)
    smallest = _round_up(max(2 * overlap, 1), multiple)
    sides: list[int] = []
    for count in range(1, length + 1):
        side = max(_round_up(-(-(length + (count - 1) * overlap) // count), multiple), smallest)
        if side <= largest and side not in sides:
            sides.append(side)
        if side == smallest or len(sides) == 8:  # more tiles than this only add overlap
            break
    return sides or [largest]


def plan_tile(height: int, width: int, budget: int, overlap: int, multiple: int = 1) -> int:
    """The square tile side (≤ ``budget``, a multiple of ``multiple``) whose grid covers a
    ``height`` x ``width`` scene with the fewest model pixels at ``overlap``.

    ``--tile`` is this budget (the memory bound: the forward pass's memory grows with a tile's
    pixels); a fixed side wastes what its last row and column run past the scene: 612/64 runs
    1.56 model px per scene px on a 2448² scene; planned within 768 it is 672 (4 x 4 tiles,
    1.21), within 864 it is 864 (3 x 3, 1.12). Ties go to the smaller side (less memory).
    """
    candidates = set(tile_candidates(height, budget, overlap, multiple))
    candidates |= set(tile_candidates(width, budget, overlap, multiple))

    def cost(side: int) -> tuple[int, int]:
        tiles = len(tile_origins(height, side, overlap)) * len(tile_origins(width, side, overlap))
        return tiles * side * side, side

    return min(candidates, key=cost)


def grid_frame(height: int, width: int, region: PixelWindow | None, overlap: int) -> PixelWindow:
    """The window a region's tile grid is laid over: the whole scene for a whole-scene stitch;
    for a block of a block-parallel run, the block widened by ``overlap // 2`` on each side
    that is not on the scene's border.

    Each block runs its own grid (planned for this frame) and keeps only its own pixels: a hard
    cut at the block border, joined where an interior cross-fade has its midpoint, so the pixels
    beside the border see ``overlap // 2`` of real context past it, as the midpoint of every
    overlap inside a grid does. What that buys: a tile no longer straddles a border to be run by
    both blocks (one extra tile row or column per border, 1.54 model px per scene px at 16384²
    in 16 blocks); what it costs: a model whose receptive field reaches further than the blend
    margin gives pixels beside a block border without the cross-fade, so block-parallel output
    equals single-worker output exactly only for models within the margin (tested), and for
    deep ones differs there by what a tile's edge context changes.
    """
    scene = PixelWindow(0, 0, height, width)
    if region is None or region == scene:
        return scene
    if not region.fits(height, width):
        raise ValueError(f"region ({region.describe()}) reaches past the {height}x{width} scene")
    halo = overlap // 2  # clipped to the scene: its border sides keep the scene's own edge
    top, left = max(region.row_off - halo, 0), max(region.col_off - halo, 0)
    bottom, right = min(region.row_stop + halo, height), min(region.col_stop + halo, width)
    return PixelWindow(top, left, bottom - top, right - left)


def plan_region_tile(
    height: int,
    width: int,
    region: PixelWindow | None,
    budget: int,
    overlap: int,
    multiple: int = 1,
) -> int:
    """:func:`plan_tile` for the grid of ``region`` (:func:`grid_frame`): a block's own tile."""
    frame = grid_frame(height, width, region, overlap)
    return plan_tile(frame.height, frame.width, budget, overlap, multiple)


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(y, x) origins of every inference tile, row-major; the tile index is the list index."""
    return [
        (y, x)
        for y in tile_origins(height, tile, overlap)
        for x in tile_origins(width, tile, overlap)
    ]


def padded_extent(length: int, tile: int, overlap: int) -> int:
    """Length the side is padded to so that its last tile is whole."""
    return tile_origins(length, tile, overlap)[-1] + tile


def pad_to_grid(image: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """Reflect-pad (H, W, ...) at the bottom and right to the tile grid's extent.

    NumPy's reflect repeats the reflection for pads longer than the side, so scenes much smaller
    than a tile work too (a 1-px side is repeated).
    """
    height, width = image.shape[:2]
    pad_h = padded_extent(height, tile, overlap) - height
    pad_w = padded_extent(width, tile, overlap) - width
    if pad_h == 0 and pad_w == 0:
        return image
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (image.ndim - 2)
    return np.pad(image, widths, mode="reflect")


def cut_tiles(image: np.ndarray, tile: int, overlap: int) -> list[np.ndarray]:
    """The scene's tiles in ``tile_grid`` order, each (tile, tile, ...), edge tiles reflect-padded.

    The tiles are views into one padded copy of the scene, so cutting costs one pad, not a copy
    per tile.
    """
    height, width = image.shape[:2]
    padded = pad_to_grid(image, tile, overlap)
    return [padded[y : y + tile, x : x + tile] for y, x in tile_grid(height, width, tile, overlap)]


def blend_margin(overlap: int) -> int:
    """Pixels at an inner tile edge that get weight 0 (see the notes above)."""
    return overlap // 4


def blend_ramp(overlap: int) -> np.ndarray:
    """Weights rising from an inner tile edge inward, (overlap,) float32, first pixel = edge.

    ``ramp[d] + ramp[overlap - 1 - d] == 1``: the two tiles sharing an overlap sum to 1.
    """
    margin = blend_margin(overlap)
    length = overlap - 2 * margin
    d = np.arange(overlap, dtype=np.float64)
    rising = np.sin(0.5 * np.pi * (d - margin + 0.5) / max(length, 1)) ** 2
    ramp = np.where(d < margin, 0.0, np.where(d >= margin + length, 1.0, rising))
    return ramp.astype(np.float32)


def blend_window_1d(tile: int, overlap: int, *, taper_start: bool, taper_end: bool) -> np.ndarray:
    """One axis of a tile's weight window, (tile,) float32; untapered ends stay at 1."""
    _check_tile_args(tile, overlap)
    window = np.ones(tile, dtype=np.float32)
    if overlap:
        ramp = blend_ramp(overlap)
        if taper_start:
            window[:overlap] = ramp
        if taper_end:
            window[tile - overlap :] = np.minimum(window[tile - overlap :], ramp[::-1])
    return window


def tile_weights(height: int, width: int, tile: int, overlap: int, y: int, x: int) -> np.ndarray:
    """Blend weights (tile, tile) float32 of the tile at (y, x) in a (height, width) scene.

    A side is tapered only where a neighbouring tile overlaps it: not on the scene's top/left
    border (origin 0) nor on the last tile's far side.
    """
    last_y = tile_origins(height, tile, overlap)[-1]
    last_x = tile_origins(width, tile, overlap)[-1]
    wy = blend_window_1d(tile, overlap, taper_start=y > 0, taper_end=y < last_y)
    wx = blend_window_1d(tile, overlap, taper_start=x > 0, taper_end=x < last_x)
    return np.outer(wy, wx)


def crop_to_scene(
    tile_array: np.ndarray, height: int, width: int, tile: int, overlap: int, index: int
) -> np.ndarray:
    """The part of tile ``index`` that lies inside the scene (drops the edge padding)."""
    y, x = tile_grid(height, width, tile, overlap)[index]
    return tile_array[: height - y, : width - x]


class TileBlender:
    """Accumulates per-tile class probabilities of one scene into its blended stitch.

    Memory is one (H, W, C) float32 canvas and one (H, W) weight plane for the scene, whatever
    the number of tiles: tiles are added one at a time and dropped. Only the part of each tile
    inside the scene is kept (padding is cropped here).
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int, channels: int) -> None:
        _check_tile_args(tile, overlap)
        self.height, self.width = height, width
        self.tile, self.overlap = tile, overlap
        self.grid = tile_grid(height, width, tile, overlap)
        self.canvas = np.zeros((height, width, channels), dtype=np.float32)
        self.weight = np.zeros((height, width), dtype=np.float32)
        self._seen: set[int] = set()

    def add(self, index: int, probabilities: np.ndarray) -> None:
        """Blend in tile ``index`` (its position in ``tile_grid``), (tile, tile, C).

        A tile already cropped to the scene (``crop_to_scene``) is accepted too.
        """
        if not 0 <= index < len(self.grid):
            raise ValueError(f"tile index {index} outside 0..{len(self.grid) - 1}")
        if index in self._seen:
            raise ValueError(f"tile {index} added twice")
        y, x = self.grid[index]
        h, w = min(self.tile, self.height - y), min(self.tile, self.width - x)
        channels = self.canvas.shape[-1]
        if probabilities.shape not in ((self.tile, self.tile, channels), (h, w, channels)):
            raise ValueError(
                f"tile {index} has shape {probabilities.shape}, expected "
                f"{(self.tile, self.tile, channels)} or cropped {(h, w, channels)}"
            )
        self._seen.add(index)
        weights = tile_weights(self.height, self.width, self.tile, self.overlap, y, x)[:h, :w]
        self.canvas[y : y + h, x : x + w] += probabilities[:h, :w] * weights[..., None]
        self.weight[y : y + h, x : x + w] += weights

    @property
    def complete(self) -> bool:
        return len(self._seen) == len(self.grid)

    def class_ids(self) -> np.ndarray:
        """Argmax (H, W) uint8; the per-pixel total weight is positive, so it needs no division."""
        return np.argmax(self.canvas, axis=-1).astype(np.uint8)

    def probabilities(self) -> np.ndarray:
        """The blended probabilities (H, W, C) float32 (weighted mean of the covering tiles)."""
        return self.canvas / self.weight[..., None]
