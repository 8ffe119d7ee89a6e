"""Raster geometry: windows, block grids, affine offsets and GeoTIFF output limits."""

from __future__ import annotations

import pytest

from pipelines.core.geo import (
    IDENTITY,
    MAX_RASTER_SIDE,
    OutputTooLargeError,
    PixelWindow,
    block_grid,
    check_output_limits,
    is_identity,
    pixel_offset,
    to_gdal_geotransform,
    window_transform,
)

UTM = (0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)


def test_window_describes_itself_as_half_open_ranges() -> None:
    window = PixelWindow(row_off=0, col_off=512, height=512, width=512)
    assert window.describe() == "row 0..512, col 512..1024"
    assert (window.row_stop, window.col_stop, window.shape) == (512, 1024, (512, 512))
    assert window.fits(512, 1024) and not window.fits(512, 1023)


@pytest.mark.parametrize(("row", "col", "h", "w"), [(-1, 0, 1, 1), (0, -1, 1, 1), (0, 0, 0, 1)])
def test_window_rejects_negative_offsets_and_empty_size(row: int, col: int, h: int, w: int) -> None:
    with pytest.raises(ValueError):
        PixelWindow(row, col, h, w)


def test_overlap_is_strict_sharing_an_edge_is_not_overlap() -> None:
    a = PixelWindow(0, 0, 10, 10)
    assert a.overlaps(PixelWindow(9, 9, 5, 5))
    assert not a.overlaps(PixelWindow(10, 0, 5, 10))
    assert not a.overlaps(PixelWindow(0, 10, 10, 5))


def test_block_grid_covers_an_odd_raster_exactly_once() -> None:
    grid = block_grid(1000, 1300, 512)
    assert len(grid) == 2 * 3
    assert grid[0] == PixelWindow(0, 0, 512, 512)
    assert grid[2] == PixelWindow(0, 1024, 512, 276)
    assert grid[-1] == PixelWindow(512, 1024, 488, 276)
    covered = [(r, c) for w in grid for r in range(w.row_off, w.row_stop, 8) for c in
               range(w.col_off, w.col_stop, 4)]  # fmt: skip
    assert len(covered) == len(set(covered))
    assert sum(w.height * w.width for w in grid) == 1000 * 1300


def test_block_grid_rejects_bad_sizes() -> None:
    with pytest.raises(ValueError):
        block_grid(10, 10, 0)
    with pytest.raises(ValueError):
        block_grid(0, 10, 512)


def test_identity_and_gdal_order() -> None:
    assert is_identity(IDENTITY) and is_identity((1, 0, 0, 0, 1, 0))  # type: ignore[arg-type]
    assert not is_identity(UTM)
    assert to_gdal_geotransform(UTM) == (500000.0, 0.5, 0.0, 4000000.0, 0.0, -0.5)


def test_window_transform_and_pixel_offset_are_inverse() -> None:
    window = PixelWindow(1024, 512, 100, 100)
    moved = window_transform(UTM, window)
    assert moved == (0.5, 0.0, 500256.0, 0.0, -0.5, 3999488.0)
    assert pixel_offset(UTM, moved) == (1024, 512)
    rotated = (0.5, 0.1, 10.0, 0.1, -0.5, 20.0)
    assert pixel_offset(rotated, window_transform(rotated, window)) == (1024, 512)  # type: ignore[arg-type]


def test_pixel_offset_rejects_blocks_off_the_grid_or_resampled() -> None:
    with pytest.raises(ValueError, match="off the scene's pixel grid"):
        pixel_offset(UTM, (0.5, 0.0, 500000.25, 0.0, -0.5, 4000000.0))
    with pytest.raises(ValueError, match="pixel size"):
        pixel_offset(UTM, (1.0, 0.0, 500000.0, 0.0, -1.0, 4000000.0))


def test_output_limits_pick_classic_tiff_when_it_cannot_overflow() -> None:
    assert check_output_limits(2448, 2448, 1) == "NO"
    assert check_output_limits(16384, 16384, 7) == "NO"  # 1.9 GB raw, 2.5 GB with overviews
    assert check_output_limits(65536, 65536, 1) == "YES"  # 4 GiB raw
    assert check_output_limits(100_000, 100_000, 7) == "YES"


@pytest.mark.parametrize(
    ("width", "height", "bands", "match"),
    [
        (MAX_RASTER_SIDE + 1, 10, 1, "raster size"),
        (10, 0, 1, "raster size"),
        (10, 10, 0, "bands"),
        (10, 10, 70000, "bands"),
        (MAX_RASTER_SIDE, MAX_RASTER_SIDE, 1, "tiles"),
    ],
)
def test_output_limits_fail_clearly_before_compute(
    width: int, height: int, bands: int, match: str
) -> None:
    with pytest.raises(OutputTooLargeError, match=match):
        check_output_limits(width, height, bands)
    assert issubclass(OutputTooLargeError, ValueError)
