"""A scene's GSD read from GeoTIFFs written by rasterio: metres, feet, degrees, Web Mercator,
and the refusals (a transform without a CRS, a grid whose pixel size varies)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning

from pipelines.core.errors import BadInputError
from pipelines.core.gsd import DEEPGLOBE_GSD_M
from pipelines.io.gsd import raster_gsd, scene_gsd
from pipelines.io.raster_read import read_info


def _geotiff(path: Path, transform: Affine | None, crs: str | None, size: int = 16) -> str:
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 3, "dtype": "uint8"}
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = crs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the plain TIFF is meant
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.full((3, size, size), 120, np.uint8))
    return str(path)


def _gsd(tmp_path: Path, transform: Affine | None, crs: str | None, size: int = 16):
    return raster_gsd(read_info(_geotiff(tmp_path / "scene_sat.tif", transform, crs, size)))


def test_metres_are_the_pixel_size(tmp_path: Path) -> None:
    gsd = _gsd(tmp_path, Affine(0.5, 0, 500000, 0, -0.5, 4000000), "EPSG:32633")
    assert (gsd.x, gsd.y) == (0.5, 0.5)
    assert gsd.source == "transform (EPSG:32633, metre)"


def test_us_survey_feet_and_international_feet_are_converted_to_metres(tmp_path: Path) -> None:
    us = _gsd(tmp_path, Affine(2.0, 0, 6e6, 0, -2.0, 2e6), "EPSG:2229")  # California 5, ftUS
    assert us.metres == pytest.approx(2 * 1200 / 3937, rel=1e-12)
    assert "US survey foot" in us.source
    intl = _gsd(tmp_path, Affine(2.0, 0, 7e5, 0, -2.0, 1e6), "EPSG:2222")  # Arizona East, ft
    assert intl.metres == pytest.approx(2 * 0.3048, rel=1e-12)
    assert "EPSG:2222, foot" in intl.source


def test_degrees_are_converted_at_the_scene_latitude_per_axis(tmp_path: Path) -> None:
    gsd = _gsd(tmp_path, Affine(1e-5, 0, 10.0, 0, -1e-5, 45.0 + 8e-5), "EPSG:4326")
    # the centre is at latitude 45: a degree of longitude is 78,846.8 m, of latitude 111,131.8 m
    assert gsd.x == pytest.approx(0.788468, rel=1e-5)
    assert gsd.y == pytest.approx(1.111318, rel=1e-5)
    assert not gsd.square
    assert "degree at latitude 45.0000" in gsd.source


def test_a_geographic_scene_spanning_many_degrees_is_refused_with_the_reason(
    tmp_path: Path,
) -> None:
    with pytest.raises(BadInputError, match=r"varies by .* gdalwarp -t_srs EPSG:326xx") as error:
        _gsd(tmp_path, Affine(0.5, 0, 10.0, 0, -0.5, 60.0), "EPSG:4326", size=32)  # 16° tall
    assert error.value.uri.endswith("scene_sat.tif")


def test_a_transform_outside_latitudes_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match=r"outside -90\.\.90"):
        _gsd(tmp_path, Affine(0.5, 0, 500000, 0, -0.5, 4000000), "EPSG:4326")


def test_web_mercator_at_45_degrees_gives_the_ground_size(tmp_path: Path) -> None:
    # 0.6 projected metres a pixel around (10°E, 45°N): the point scale there is sqrt(2)
    gsd = _gsd(tmp_path, Affine(0.6, 0, 1113194.9, 0, -0.6, 5621521.5), "EPSG:3857")
    assert gsd.x == pytest.approx(0.6 / 2**0.5, rel=1e-4)
    assert gsd.y == pytest.approx(0.6 / 2**0.5, rel=1e-4)
    assert "point scale 1.414" in gsd.source


def test_a_geotransform_without_a_crs_has_no_known_unit(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no CRS, so the unit of its pixel size is unknown"):
        _gsd(tmp_path, Affine(0.5, 0, 100, 0, -0.5, 100), None)


def test_no_georeference_is_deepglobes_gsd_and_gsd_overrides_anything(tmp_path: Path) -> None:
    plain = _geotiff(tmp_path / "plain_sat.tif", None, None)
    assert scene_gsd(plain, read_info(plain)).metres == DEEPGLOBE_GSD_M
    assert scene_gsd(str(tmp_path / "x_sat.jpg"), None).metres == DEEPGLOBE_GSD_M
    nocrs = _geotiff(tmp_path / "nocrs_sat.tif", Affine(0.5, 0, 100, 0, -0.5, 100), None)
    override = scene_gsd(nocrs, read_info(nocrs), 2.0)
    assert (override.metres, override.source) == (2.0, "--gsd")
