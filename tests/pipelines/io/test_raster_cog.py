"""Block-parallel output: block GeoTIFFs assembled through a VRT into one COG, equal to whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipelines.core.geo import PixelWindow, block_grid
from pipelines.core.palette import NUM_CLASSES
from pipelines.io import storage
from pipelines.io.raster_cog import assemble_cog, inspect_cog
from pipelines.io.raster_read import RasterInfo
from pipelines.io.raster_write import CLASS_NODATA, ClassMapWriter, write_class_block

HEIGHT, WIDTH = 1001, 1301  # odd: edge blocks are partial in both directions
UTM33_WKT = rasterio.crs.CRS.from_epsg(32633).to_wkt()


def scene_info(uri: str = "scene_sat.tif", crs: str | None = UTM33_WKT) -> RasterInfo:
    transform = (0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0) if crs else (1.0, 0, 0, 0, 1.0, 0)
    return RasterInfo(
        uri=uri,
        driver="GTiff",
        width=WIDTH,
        height=HEIGHT,
        count=3,
        dtype="uint8",
        crs=crs,
        transform=transform,  # type: ignore[arg-type]
        nodata=0.0,
        has_alpha=False,
        block_shape=(512, 512),
    )


def class_map() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ids = rng.integers(0, NUM_CLASSES, (HEIGHT, WIDTH), dtype=np.uint8)
    valid = np.ones((HEIGHT, WIDTH), bool)
    valid[:40, :] = False  # a nodata border
    return ids, valid


def cut(array: np.ndarray, window: PixelWindow) -> np.ndarray:
    return array[window.row_off : window.row_stop, window.col_off : window.col_stop]


def write_whole(destination: str, info: RasterInfo) -> None:
    ids, valid = class_map()
    with ClassMapWriter(destination, info) as writer:
        for window in block_grid(HEIGHT, WIDTH, 512):
            writer.write_window(window, cut(ids, window), cut(valid, window))


def write_blocks(folder: str, info: RasterInfo, block: int) -> list[str]:
    ids, valid = class_map()
    uris = []
    for n, window in enumerate(block_grid(HEIGHT, WIDTH, block)):
        uri = storage.join(folder, f"block-{n:03d}.tif")
        write_class_block(uri, info, window, cut(ids, window), cut(valid, window))
        uris.append(uri)
    return uris


def read_levels(path: str) -> list[np.ndarray]:
    """Full resolution and every overview level of band 1."""
    with rasterio.open(path) as ds:
        levels = [ds.read(1)]
        count = len(ds.overviews(1))
    for level in range(count):
        with rasterio.open(path, overview_level=level) as ovr:
            levels.append(ovr.read(1))
    return levels


@pytest.mark.parametrize("block", [384, 512])
def test_blocks_assembled_equal_the_scene_written_whole(tmp_path: Path, block: int) -> None:
    info = scene_info()
    whole = str(tmp_path / "whole_mask.tif")
    write_whole(whole, info)
    uris = write_blocks(str(tmp_path / "blocks"), info, block)
    assembled = str(tmp_path / "assembled_mask.tif")
    # Blocks may arrive in any order (Beam gives no order).
    assemble_cog(list(reversed(uris)), assembled, info)
    whole_levels, assembled_levels = read_levels(whole), read_levels(assembled)
    assert len(whole_levels) == len(assembled_levels) >= 2
    for a, b in zip(whole_levels, assembled_levels, strict=True):
        np.testing.assert_array_equal(a, b)
    ids, valid = class_map()
    np.testing.assert_array_equal(assembled_levels[0], np.where(valid, ids, CLASS_NODATA))
    report = inspect_cog(assembled)
    assert report.valid, report.errors
    assert report.block_shape == (512, 512) and report.nodata == CLASS_NODATA
    assert report.colormap == inspect_cog(whole).colormap
    with rasterio.open(whole) as a, rasterio.open(assembled) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        assert b.transform == Affine(*info.transform)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_assembly_without_crs_places_blocks_by_pixel_offset(tmp_path: Path) -> None:
    info = scene_info(crs=None)
    whole = str(tmp_path / "whole.tif")
    write_whole(whole, info)
    assembled = str(tmp_path / "assembled.tif")
    assemble_cog(write_blocks(str(tmp_path / "b"), info, 512), assembled, info)
    with rasterio.open(whole) as a, rasterio.open(assembled) as b:
        assert a.crs is None and b.crs is None and b.transform == Affine.identity()
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_a_missing_block_is_an_error_not_a_hole(tmp_path: Path) -> None:
    info = scene_info()
    uris = write_blocks(str(tmp_path / "b"), info, 512)
    with pytest.raises(ValueError, match="blocks cover"):
        assemble_cog(uris[:-1], str(tmp_path / "out.tif"), info)
    assert not (tmp_path / "out.tif").exists()


def test_overlapping_blocks_are_an_error(tmp_path: Path) -> None:
    info = scene_info()
    uris = write_blocks(str(tmp_path / "b"), info, 512)
    extra = str(tmp_path / "extra.tif")
    write_class_block(extra, info, PixelWindow(100, 100, 10, 10), np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="overlap"):
        assemble_cog([*uris, extra], str(tmp_path / "out.tif"), info)


def test_a_block_of_another_scene_is_an_error(tmp_path: Path) -> None:
    info = scene_info()
    uris = write_blocks(str(tmp_path / "b"), info, 512)
    other = scene_info(crs=rasterio.crs.CRS.from_epsg(32634).to_wkt())
    stray = str(tmp_path / "stray.tif")
    write_class_block(stray, other, PixelWindow(0, 0, 512, 512), np.zeros((512, 512), np.uint8))
    with pytest.raises(ValueError, match="has CRS"):
        assemble_cog([stray, *uris[1:]], str(tmp_path / "out.tif"), info)


def test_no_blocks_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no blocks"):
        assemble_cog([], str(tmp_path / "out.tif"), scene_info())


def test_blocks_and_result_on_gcs(tmp_path: Path, gcs_root: str) -> None:
    info = scene_info()
    uris = write_blocks(storage.join(gcs_root, "blocks"), info, 512)
    assert all(u.startswith("gs://") for u in uris)
    destination = storage.join(gcs_root, "scene_mask.tif")
    assemble_cog(uris, destination, info)
    whole = str(tmp_path / "whole.tif")
    write_whole(whole, info)
    with storage.local_copy(destination) as path:
        for a, b in zip(read_levels(whole), read_levels(path), strict=True):
            np.testing.assert_array_equal(a, b)
