"""Raster geometry without a raster library: pixel windows, block grids, affine offsets, limits.

Reading by windows, writing output blocks and assembling parallel blocks all reason about the
same few facts (where a window sits, where a block's transform puts it in the scene, whether an
output fits GeoTIFF's limits). They are plain arithmetic, so they live here, testable without
GDAL, and the raster adapters in ``pipelines.io`` stay thin.

Transforms are 6-tuples in affine order ``(a, b, c, d, e, f)``: ``x = a*col + b*row + c`` and
``y = d*col + e*row + f`` (what ``rasterio``'s ``Affine`` takes positionally). GDAL's geotransform
orders the same numbers ``(c, a, b, f, d, e)``; :func:`to_gdal_geotransform` converts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Transform = tuple[float, float, float, float, float, float]

IDENTITY: Transform = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)

# The block (tile) side of every raster this project writes: GDAL's COG default, and a multiple
# of 16 as TIFF tiling requires.
BLOCK_SIZE = 512

# GDAL sizes rasters with C ints.
MAX_RASTER_SIDE = 2**31 - 1
# TIFF stores SamplesPerPixel as a 16-bit count.
MAX_TIFF_BANDS = 65535
# A classic TIFF addresses bytes with 32-bit offsets. Below this many bytes of raw pixels
# (overviews included) plus tile index, a file cannot overflow even if compression gains nothing
# (DEFLATE's worst case adds ~0.03 %); the margin covers the headers and the color table.
_CLASSIC_TIFF_SAFE_BYTES = 2**32 - 2**26


class OutputTooLargeError(ValueError):
    """An output raster GDAL or GeoTIFF cannot hold; raised before any compute is spent."""


@dataclass(frozen=True)
class PixelWindow:
    """A rectangle of pixels: rows ``row_off..row_off+height``, cols ``col_off..col_off+width``."""

    row_off: int
    col_off: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if self.row_off < 0 or self.col_off < 0:
            raise ValueError(f"window offsets must be >= 0, got {self.describe()}")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"window must be non-empty, got {self.height}x{self.width}")

    @property
    def row_stop(self) -> int:
        return self.row_off + self.height

    @property
    def col_stop(self) -> int:
        return self.col_off + self.width

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def describe(self) -> str:
        """Half-open ranges as a person reads them in an error: ``row 0..512, col 512..1024``."""
        return f"row {self.row_off}..{self.row_stop}, col {self.col_off}..{self.col_stop}"

    def fits(self, height: int, width: int) -> bool:
        """True when the window lies entirely inside a ``height`` x ``width`` raster."""
        return self.row_stop <= height and self.col_stop <= width

    def overlaps(self, other: PixelWindow) -> bool:
        return (
            self.row_off < other.row_stop
            and other.row_off < self.row_stop
            and self.col_off < other.col_stop
            and other.col_off < self.col_stop
        )


def block_grid(height: int, width: int, block: int = BLOCK_SIZE) -> list[PixelWindow]:
    """Non-overlapping windows of ``block`` px covering the raster, row-major; edge ones smaller.

    Aligned with the output's internal tiling when ``block`` is a multiple of the tile size, so
    every write fills whole tiles and GDAL never re-reads a half-written one.
    """
    if block <= 0:
        raise ValueError(f"block size must be positive, got {block}")
    if height <= 0 or width <= 0:
        raise ValueError(f"raster must be non-empty, got {height}x{width}")
    return [
        PixelWindow(row, col, min(block, height - row), min(block, width - col))
        for row in range(0, height, block)
        for col in range(0, width, block)
    ]


def is_identity(transform: Transform) -> bool:
    """True for the pixel-space transform GDAL reports when a file has no geotransform."""
    return tuple(float(v) for v in transform) == IDENTITY


def to_gdal_geotransform(transform: Transform) -> Transform:
    """Affine order ``(a, b, c, d, e, f)`` → GDAL's ``(c, a, b, f, d, e)``."""
    a, b, c, d, e, f = transform
    return (c, a, b, f, d, e)


def window_transform(transform: Transform, window: PixelWindow) -> Transform:
    """The transform of a window's own raster: same pixel size, origin moved to its corner."""
    a, b, c, d, e, f = transform
    col, row = window.col_off, window.row_off
    return (a, b, c + a * col + b * row, d, e, f + d * col + e * row)


def pixel_offset(scene: Transform, block: Transform, tolerance: float = 1e-6) -> tuple[int, int]:
    """(row, col) of a block's top-left pixel in the scene, from the two transforms.

    The block must share the scene's pixel size and rotation and sit on its pixel grid (within
    ``tolerance`` of a pixel); anything else is a block from another scene or a resampled one,
    and mosaicking it would shift pixels silently, so it is an error.
    """
    sa, sb, sc, sd, se, sf = scene
    ba, bb, bc, bd, be, bf = block
    scale = max(abs(sa), abs(sb), abs(sd), abs(se))
    if any(abs(s - b) > tolerance * scale for s, b in ((sa, ba), (sb, bb), (sd, bd), (se, be))):
        raise ValueError(f"block pixel size/rotation {block[:2] + block[3:5]} differs from scene")
    det = sa * se - sb * sd
    if det == 0:
        raise ValueError(f"scene transform {scene} is not invertible")
    dx, dy = bc - sc, bf - sf
    col = (se * dx - sb * dy) / det
    row = (sa * dy - sd * dx) / det
    col_i, row_i = round(col), round(row)
    if abs(col - col_i) > tolerance or abs(row - row_i) > tolerance:
        raise ValueError(f"block origin is off the scene's pixel grid (row {row}, col {col})")
    return int(row_i), int(col_i)


def check_output_limits(
    width: int, height: int, bands: int, bytes_per_sample: int = 1, block: int = BLOCK_SIZE
) -> str:
    """Fail before compute when GDAL/GeoTIFF cannot hold an output; else its ``BIGTIFF`` option.

    Limits: each side 1..2**31-1 px (GDAL's int), 1..65535 bands (TIFF), and a tile count that
    fits GDAL's int. Returns ``"NO"`` when a classic TIFF cannot overflow 4 GiB whatever the
    compression does (raw pixels plus a third for overviews, plus the tile index, under the
    limit), else ``"YES"``. A decided value instead of GDAL's ``IF_SAFER`` heuristic, which
    guesses from a compression ratio and can still fail hours into a huge write; BigTIFF is read
    by every GDAL since 1.5 and by QGIS.
    """
    if not (1 <= width <= MAX_RASTER_SIDE and 1 <= height <= MAX_RASTER_SIDE):
        raise OutputTooLargeError(
            f"output of {width}x{height} px is outside GDAL's raster size 1..{MAX_RASTER_SIDE}"
        )
    if not 1 <= bands <= MAX_TIFF_BANDS:
        raise OutputTooLargeError(f"output of {bands} bands is outside GeoTIFF's 1..65535")
    tiles = math.ceil(width / block) * math.ceil(height / block)
    if tiles * bands > MAX_RASTER_SIDE:
        raise OutputTooLargeError(
            f"output of {width}x{height} px x {bands} bands needs {tiles * bands} tiles of "
            f"{block} px, more than GDAL can index ({MAX_RASTER_SIDE})"
        )
    raw = width * height * bands * bytes_per_sample
    with_overviews = raw + raw // 3
    tile_index = 2 * 4 * tiles * bands * 4 // 3  # offsets + byte counts, 4 bytes each
    return "NO" if with_overviews + tile_index < _CLASSIC_TIFF_SAFE_BYTES else "YES"
