"""Windowed raster reading: georeference, validity from alpha / mask / nodata, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from PIL import Image
from rasterio.enums import ColorInterp

from pipelines.core.errors import BadInputError
from pipelines.core.geo import PixelWindow
from pipelines.io.raster_read import RasterInfo, check_rgb, open_raster, read_info, read_window

UTM33 = "EPSG:32633"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)


def write_tif(path: Path, data: np.ndarray, **overrides: Any) -> str:
    """A tiled, georeferenced GeoTIFF of ``data`` (bands, h, w); ``overrides`` edit the profile."""
    count, height, width = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": data.dtype.name,
        "crs": UTM33,
        "transform": TRANSFORM,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    profile.update(overrides)
    profile = {k: v for k, v in profile.items() if v is not None}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path)


def scene(height: int = 300, width: int = 400, seed: int = 0) -> np.ndarray:
    """Random RGB in 1..255 with a zero (nodata) border of 20 px left and 10 px top."""
    rgb = np.random.default_rng(seed).integers(1, 256, (3, height, width), dtype=np.uint8)
    rgb[:, :10, :] = 0
    rgb[:, :, :20] = 0
    return rgb


def expected_valid(rgb: np.ndarray) -> np.ndarray:
    return (rgb != 0).any(axis=0)


def test_read_info_reports_georeference_layout_and_nodata(tmp_path: Path) -> None:
    uri = write_tif(tmp_path / "a_sat.tif", scene(), nodata=0)
    info = read_info(uri)
    assert isinstance(info, RasterInfo)
    assert (info.uri, info.driver, info.width, info.height, info.count) == (
        uri,
        "GTiff",
        400,
        300,
        3,
    )
    assert info.dtype == "uint8" and info.nodata == 0.0 and not info.has_alpha
    assert info.crs is not None and rasterio.crs.CRS.from_wkt(info.crs).to_epsg() == 32633
    assert info.transform == tuple(TRANSFORM[:6])
    assert info.block_shape == (256, 256)
    assert info.georeferenced


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_raster_without_crs_reads_with_crs_none(tmp_path: Path) -> None:
    uri = write_tif(tmp_path / "plain.tif", scene(), crs=None, transform=None)
    info = read_info(uri)
    assert info.crs is None and info.transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert not info.georeferenced
    with open_raster(uri) as reader:
        rgb, valid = read_window(reader, PixelWindow(0, 0, 300, 400))
    assert rgb.shape == (300, 400, 3) and valid.all()  # no nodata declared: all valid


def test_read_window_returns_hwc_rgb_of_exactly_that_window(tmp_path: Path) -> None:
    data = scene()
    uri = write_tif(tmp_path / "a.tif", data)
    window = PixelWindow(row_off=37, col_off=250, height=200, width=150)
    with open_raster(uri) as reader:
        rgb, valid = read_window(reader, window)
    assert rgb.dtype == np.uint8 and rgb.shape == (200, 150, 3) and rgb.flags.c_contiguous
    np.testing.assert_array_equal(rgb, data[:, 37:237, 250:400].transpose(1, 2, 0))
    assert valid.dtype == bool and valid.shape == (200, 150)


def test_nodata_by_value_by_internal_mask_and_by_alpha_agree(tmp_path: Path) -> None:
    data = scene()
    data[:, 100:110, 100:300] = 0  # an interior nodata stripe too
    truth = expected_valid(data)
    # A pixel with only SOME bands at the nodata value is still valid.
    data[0, 200, 200] = 0
    truth[200, 200] = True
    by_value = write_tif(tmp_path / "value.tif", data, nodata=0)
    by_mask = tmp_path / "mask.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        write_tif(by_mask, data)
        with rasterio.open(by_mask, "r+") as dst:
            dst.write_mask(truth.astype(np.uint8) * 255)
    alpha = np.concatenate([data, truth[np.newaxis].astype(np.uint8) * 255])
    by_alpha = tmp_path / "alpha.tif"
    write_tif(by_alpha, alpha, photometric="RGB")
    with rasterio.open(by_alpha, "r+") as dst:
        dst.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    window = PixelWindow(0, 0, 300, 400)
    masks = []
    for uri in (by_value, str(by_mask), str(by_alpha)):
        with open_raster(uri) as reader:
            rgb, valid = read_window(reader, window)
        np.testing.assert_array_equal(rgb, data.transpose(1, 2, 0))
        masks.append(valid)
    assert read_info(str(by_alpha)).has_alpha
    for valid in masks:
        np.testing.assert_array_equal(valid, truth)
    # Windowed, not only whole-raster.
    with open_raster(str(by_mask)) as reader:
        _, part = read_window(reader, PixelWindow(5, 15, 100, 100))
    np.testing.assert_array_equal(part, truth[5:105, 15:115])


def test_nodata_value_a_uint8_cannot_hold_marks_nothing(tmp_path: Path) -> None:
    uri = write_tif(tmp_path / "nan.tif", scene(), nodata=None)
    with rasterio.open(uri, "r+") as dst:
        dst.nodata = 0.5  # fractional: no uint8 pixel equals it
    with open_raster(uri) as reader:
        _, valid = read_window(reader, PixelWindow(0, 0, 300, 400))
    assert valid.all()


@pytest.mark.parametrize("count", [1, 2, 5])
def test_band_count_other_than_rgb_is_bad_input_naming_the_count(
    tmp_path: Path, count: int
) -> None:
    data = np.zeros((count, 64, 64), np.uint8)
    uri = write_tif(tmp_path / f"b{count}.tif", data, photometric="MINISBLACK")
    with open_raster(uri) as reader, pytest.raises(BadInputError) as err:
        read_window(reader, PixelWindow(0, 0, 8, 8))
    assert err.value.uri == uri
    assert f"has {count} bands" in err.value.reason


def test_four_bands_without_alpha_is_bad_input(tmp_path: Path) -> None:
    uri = write_tif(
        tmp_path / "rgbn.tif", np.zeros((4, 64, 64), np.uint8), photometric="MINISBLACK"
    )
    assert not read_info(uri).has_alpha
    with pytest.raises(BadInputError, match="band 4 is not alpha"):
        check_rgb(read_info(uri))


def test_uint16_is_bad_input_saying_only_uint8(tmp_path: Path) -> None:
    uri = write_tif(tmp_path / "u16.tif", np.zeros((3, 64, 64), np.uint16))
    with open_raster(uri) as reader, pytest.raises(BadInputError) as err:
        read_window(reader, PixelWindow(0, 0, 8, 8))
    assert "uint16" in err.value.reason and "only uint8" in err.value.reason


def test_truncated_tiff_fails_the_window_naming_file_and_window(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, (3, 1024, 1024), dtype=np.uint8)
    uri = write_tif(tmp_path / "cut.tif", data, blockxsize=512, blockysize=512)
    whole = Path(uri).read_bytes()
    Path(uri).write_bytes(whole[: len(whole) // 2])
    with open_raster(uri) as reader:
        rgb, _ = read_window(reader, PixelWindow(0, 0, 512, 512))  # first tile survived
        np.testing.assert_array_equal(rgb, data[:, :512, :512].transpose(1, 2, 0))
        with pytest.raises(BadInputError) as err:
            read_window(reader, PixelWindow(0, 512, 512, 512))
    assert err.value.uri == uri
    assert err.value.reason.startswith("cannot read window (row 0..512, col 512..1024): ")
    assert "\n" not in str(err.value)


def test_window_past_the_edge_is_the_callers_error(tmp_path: Path) -> None:
    uri = write_tif(tmp_path / "a.tif", scene())
    with open_raster(uri) as reader, pytest.raises(ValueError, match="reaches past"):
        read_window(reader, PixelWindow(200, 0, 101, 10))


def test_not_a_raster_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "junk_sat.tif"
    path.write_bytes(b"not a tiff at all")
    with pytest.raises(BadInputError, match="cannot open as a raster") as err:
        read_info(str(path))
    assert err.value.uri == str(path)


@pytest.mark.parametrize(("suffix", "driver"), [(".jpg", "JPEG"), (".png", "PNG")])
def test_plain_images_read_through_the_same_reader(
    tmp_path: Path, suffix: str, driver: str
) -> None:
    data = scene(64, 96)
    path = tmp_path / f"img{suffix}"
    Image.fromarray(data.transpose(1, 2, 0)).save(path, quality=95)
    info = read_info(str(path))
    assert (info.driver, info.width, info.height, info.count) == (driver, 96, 64, 3)
    assert not info.georeferenced
    with open_raster(str(path)) as reader:
        rgb, valid = read_window(reader, PixelWindow(0, 0, 64, 96))
    if driver == "PNG":
        np.testing.assert_array_equal(rgb, data.transpose(1, 2, 0))
    assert valid.all()


@pytest.mark.parametrize(
    ("driver", "suffix", "options"),
    [
        ("JP2OpenJPEG", ".jp2", {"QUALITY": "100", "REVERSIBLE": "YES"}),
        ("VRT", ".vrt", {}),
        ("COG", ".tif", {"COMPRESS": "DEFLATE"}),
    ],
)
def test_georeferenced_formats_read_alike(
    tmp_path: Path, driver: str, suffix: str, options: dict[str, str]
) -> None:
    data = scene(200, 300)
    src = write_tif(tmp_path / "src.tif", data, nodata=0)
    path = str(tmp_path / f"copy{suffix}")
    rasterio.shutil.copy(src, path, driver=driver, **options)
    info = read_info(path)
    assert (info.width, info.height, info.count, info.nodata) == (300, 200, 3, 0.0)
    assert info.transform == tuple(TRANSFORM[:6])
    assert rasterio.crs.CRS.from_wkt(info.crs or "").to_epsg() == 32633
    with open_raster(path) as reader:
        rgb, valid = read_window(reader, PixelWindow(50, 60, 100, 120))
    np.testing.assert_array_equal(rgb, data[:, 50:150, 60:180].transpose(1, 2, 0))
    np.testing.assert_array_equal(valid, expected_valid(data)[50:150, 60:180])
