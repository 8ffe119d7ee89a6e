"""Class-map and probability COGs: georeference round trip, COG layout, nodata, gs://."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from pipelines.core.geo import OutputTooLargeError, PixelWindow, block_grid
from pipelines.core.palette import CLASS_COLORS, NUM_CLASSES
from pipelines.io import storage
from pipelines.io.raster_cog import inspect_cog
from pipelines.io.raster_read import open_raster, read_info, read_window
from pipelines.io.raster_write import CLASS_NODATA, ClassMapWriter, ProbabilityWriter

UTM33 = "EPSG:32633"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)


def write_scene(path: Path, height: int, width: int, **overrides: Any) -> np.ndarray:
    """A georeferenced RGB GeoTIFF with a zero border declared as nodata; returns its pixels."""
    rgb = np.random.default_rng(0).integers(1, 256, (3, height, width), dtype=np.uint8)
    rgb[:, :, :17] = 0
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 3,
        "dtype": "uint8",
        "crs": UTM33,
        "transform": TRANSFORM,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    profile.update(overrides)
    profile = {k: v for k, v in profile.items() if v is not None}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)
    return rgb


def fake_class_ids(rgb: np.ndarray) -> np.ndarray:
    """A deterministic "prediction" (h, w) in 0..6 from (h, w, 3) pixels."""
    return (rgb.astype(np.uint16).sum(axis=-1) % NUM_CLASSES).astype(np.uint8)


def predict_to_cog(src: str, dst: str, block: int, **writer_args: Any) -> np.ndarray:
    """Read by windows, "predict", write by windows; returns the class map it should hold."""
    info = read_info(src)
    expected = np.empty((info.height, info.width), np.uint8)
    with open_raster(src) as reader, ClassMapWriter(dst, info, **writer_args) as writer:
        for window in block_grid(info.height, info.width, block):
            rgb, valid = read_window(reader, window)
            ids = fake_class_ids(rgb)
            writer.write_window(window, ids, valid)
            rows, cols = (
                slice(window.row_off, window.row_stop),
                slice(window.col_off, window.col_stop),
            )
            expected[rows, cols] = np.where(valid, ids, CLASS_NODATA)
    return expected


def test_georeference_round_trips_through_read_write_finalize(tmp_path: Path) -> None:
    src = tmp_path / "s_sat.tif"
    write_scene(src, 700, 900)
    dst = tmp_path / "out" / "s_mask.tif"
    # 300 px windows are not aligned with the 512 tiles: GDAL rewrites partial tiles.
    expected = predict_to_cog(str(src), str(dst), block=300)
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert b.crs == a.crs == CRS.from_string(UTM33)
        assert b.transform == a.transform == TRANSFORM
        assert (b.width, b.height, b.count, b.dtypes[0]) == (900, 700, 1, "uint8")
        assert b.nodata == CLASS_NODATA
        np.testing.assert_array_equal(b.read(1), expected)
    assert (expected[:, :17] == CLASS_NODATA).all() and (expected[:, 17:] < NUM_CLASSES).all()
    assert not list((tmp_path / "out").glob("*.tmp-*"))


def test_output_is_a_valid_cog_with_tiles_overviews_and_the_palette(tmp_path: Path) -> None:
    src = tmp_path / "big_sat.tif"
    write_scene(src, 1024, 1024)
    dst = tmp_path / "big_mask.tif"
    predict_to_cog(str(src), str(dst), block=512)
    report = inspect_cog(str(dst))
    assert report.valid, report.errors
    assert report.errors == () and report.warnings == ()
    assert report.driver == "GTiff" and report.block_shape == (512, 512)
    assert len(report.overview_factors) >= 1 and report.overview_factors[0] == 2
    assert report.compression == "DEFLATE" and report.nodata == CLASS_NODATA
    assert report.colormap is not None
    for class_id, color in enumerate(CLASS_COLORS):
        assert report.colormap[class_id] == (*map(int, color), 255)
    with rasterio.open(dst) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    with rasterio.open(dst, overview_level=0) as ovr:
        assert ovr.shape == (512, 512) and ovr.block_shapes[0] == (512, 512)


@pytest.mark.parametrize("resampling", ["nearest", "mode"])
def test_overviews_hold_class_ids_never_averages(tmp_path: Path, resampling: str) -> None:
    src = tmp_path / "s_sat.tif"
    write_scene(src, 1024, 1024)
    dst = tmp_path / "s_mask.tif"
    predict_to_cog(str(src), str(dst), block=512, overview_resampling=resampling)
    with rasterio.open(dst, overview_level=0) as ovr:
        values = set(np.unique(ovr.read(1)).tolist())
    assert values <= {*range(NUM_CLASSES), CLASS_NODATA}


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_raster_without_crs_gives_output_without_crs(tmp_path: Path) -> None:
    src = tmp_path / "plain_sat.tif"
    write_scene(src, 300, 500, crs=None, transform=None)
    assert not read_info(str(src)).georeferenced
    dst = tmp_path / "plain_mask.tif"
    expected = predict_to_cog(str(src), str(dst), block=256)
    info = read_info(str(dst))
    assert info.crs is None and not info.georeferenced
    assert (info.width, info.height) == (500, 300)
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(1), expected)


def test_probability_cog_has_one_uint8_band_per_class_and_masks_nodata(tmp_path: Path) -> None:
    src = tmp_path / "s_sat.tif"
    write_scene(src, 600, 700)
    info = read_info(str(src))
    dst = tmp_path / "s_prob.tif"
    rng = np.random.default_rng(3)
    with ProbabilityWriter(str(dst), info) as writer:
        for window in block_grid(600, 700, 512):
            probs = rng.random((*window.shape, NUM_CLASSES)).astype(np.float32)
            probs /= probs.sum(axis=-1, keepdims=True)
            valid = np.ones(window.shape, bool)
            if window.col_off == 0:
                valid[:, :17] = False
            writer.write_window(window, probs, valid)
            last = (window, probs)
    window, probs = last
    with rasterio.open(dst) as ds:
        assert (ds.count, ds.dtypes[0]) == (NUM_CLASSES, "uint8")
        assert ds.crs == CRS.from_string(UTM33) and ds.transform == TRANSFORM
        rio_window = rasterio.windows.Window(window.col_off, window.row_off, *window.shape[::-1])
        stored = ds.read(window=rio_window).transpose(1, 2, 0)
        np.testing.assert_array_equal(stored, np.rint(probs * 255).astype(np.uint8))
        mask = ds.dataset_mask()
        assert (mask[:, :17] == 0).all() and (mask[:, 17:] == 255).all()
    assert inspect_cog(str(dst)).valid


def test_failure_inside_the_writer_publishes_nothing(tmp_path: Path) -> None:
    src = tmp_path / "s_sat.tif"
    write_scene(src, 100, 100)
    dst = tmp_path / "s_mask.tif"
    with pytest.raises(RuntimeError, match="boom"), ClassMapWriter(str(dst), read_info(str(src))):
        raise RuntimeError("boom")
    assert not dst.exists()


def test_writer_rejects_ids_off_the_palette_and_windows_off_the_raster(tmp_path: Path) -> None:
    src = tmp_path / "s_sat.tif"
    write_scene(src, 100, 100)
    writer = ClassMapWriter(str(tmp_path / "m.tif"), read_info(str(src)))
    try:
        with pytest.raises(ValueError, match=r"class ids must be in 0\.\.6"):
            writer.write_window(PixelWindow(0, 0, 2, 2), np.full((2, 2), 7, np.uint8))
        with pytest.raises(ValueError, match="reaches past"):
            writer.write_window(PixelWindow(99, 0, 2, 2), np.zeros((2, 2), np.uint8))
        with pytest.raises(ValueError, match="does not fill"):
            writer.write_window(PixelWindow(0, 0, 2, 2), np.zeros((3, 2), np.uint8))
    finally:
        writer.close()
    assert not (tmp_path / "m.tif").exists()


def test_gcs_round_trip(tmp_path: Path, gcs_root: str) -> None:
    local = tmp_path / "g_sat.tif"
    write_scene(local, 600, 520)
    src = storage.join(gcs_root, "in", "g_sat.tif")
    storage.upload_file(str(local), src)
    info = read_info(src)
    assert info.uri == src and (info.width, info.height) == (520, 600) and info.georeferenced
    dst = storage.join(gcs_root, "out", "g_mask.tif")
    expected = predict_to_cog(src, dst, block=512)
    assert storage.exists(dst)
    report = inspect_cog(dst)
    assert report.valid, report.errors
    with storage.local_copy(dst) as path, rasterio.open(path) as ds:
        assert ds.crs == CRS.from_string(UTM33) and ds.transform == TRANSFORM
        assert ds.nodata == CLASS_NODATA
        np.testing.assert_array_equal(ds.read(1), expected)


def test_plain_image_input_gives_output_without_georeference_warnings(tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    Image.fromarray(np.full((40, 60, 3), 9, np.uint8)).save(src)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        predict_to_cog(str(src), str(tmp_path / "p_mask.tif"), block=512)
    assert not [w for w in record if issubclass(w.category, NotGeoreferencedWarning)]
    assert not read_info(str(tmp_path / "p_mask.tif")).georeferenced


def test_output_over_gdal_limits_fails_before_any_file_is_made(tmp_path: Path) -> None:
    src = tmp_path / "s_sat.tif"
    write_scene(src, 10, 10)
    huge = dataclasses.replace(read_info(str(src)), width=2**31, height=10)
    with pytest.raises(OutputTooLargeError, match="raster size"):
        ClassMapWriter(str(tmp_path / "huge_mask.tif"), huge)
    assert not (tmp_path / "huge_mask.tif").exists()


def test_windows_without_a_valid_pixel_are_not_written_and_read_back_as_nodata(
    tmp_path: Path,
) -> None:
    from pipelines.io.raster_write import write_class_block

    src = tmp_path / "s_sat.tif"
    write_scene(src, 1100, 1200)
    info = read_info(str(src))
    ids = np.random.default_rng(5).integers(0, NUM_CLASSES, (1100, 1200)).astype(np.uint8)
    valid = np.zeros((1100, 1200), bool)
    valid[700:, 600:] = True  # 70% nodata: whole 512 blocks and whole bands of it
    dst = tmp_path / "s_mask.tif"
    with ClassMapWriter(str(dst), info) as writer:
        for row in range(0, 1100, 100):  # bands, as predict writes them
            window = PixelWindow(row, 0, min(100, 1100 - row), 1200)
            rows = slice(window.row_off, window.row_stop)
            writer.write_window(window, ids[rows], valid[rows])
    expected = np.where(valid, ids, CLASS_NODATA)
    with rasterio.open(dst) as ds:
        np.testing.assert_array_equal(ds.read(1), expected)
    block = tmp_path / "block.tif"
    window = PixelWindow(0, 0, 1100, 1200)
    write_class_block(str(block), info, window, ids, valid)
    full = tmp_path / "full.tif"
    write_class_block(str(full), info, window, ids, np.ones_like(valid))
    with rasterio.open(block) as ds:
        np.testing.assert_array_equal(ds.read(1), expected)
        # sparse: the all-nodata 512 block (0, 0) is not in the file; block (1, 1) is
        assert not ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
        assert int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1)) > 0
    with rasterio.open(full) as ds:
        assert int(ds.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)) > 0
