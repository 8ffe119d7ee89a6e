"""Pixel areas against hand computation: UTM metres, US survey feet, EPSG:4326 rows at the
equator and at 60°N on the WGS 84 ellipsoid, a GSD without a CRS, and the refusals."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
from rasterio.crs import CRS

from pipelines.answers.areas import AreaError, area_model, geodesic_row_areas

WGS84_A = 6378137.0
WGS84_F = 1 / 298.257223563
US_SURVEY_FOOT_M = 1200 / 3937


def wkt(code: str) -> str:
    return CRS.from_string(code).to_wkt()


def cell_area_wgs84(lat1_deg: float, lat2_deg: float, dlon_deg: float) -> float:
    """Area between two parallels over ``dlon`` on the WGS 84 ellipsoid, by the closed form.

    A = b² Δλ / 2 · [q(φ2) − q(φ1)], q(φ) = sinφ / (1 − e² sin²φ) + ln((1 + e sinφ) /
    (1 − e sinφ)) / (2e): the authalic-latitude formula (Snyder, Map Projections, eq. 3-12).
    """
    e2 = WGS84_F * (2 - WGS84_F)
    e = math.sqrt(e2)
    b = WGS84_A * (1 - WGS84_F)

    def q(lat: float) -> float:
        s = math.sin(math.radians(lat))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return abs(b * b * math.radians(dlon_deg) / 2 * (q(lat2_deg) - q(lat1_deg)))


def test_utm_pixels_are_the_transform_in_square_metres() -> None:
    model = area_model(wkt("EPSG:32633"), (10.0, 0.0, 500000.0, 0.0, -10.0, 4e6), 30, 40)
    assert model.method == "projected" and model.crs == "EPSG:32633"
    assert model.pixel_area_m2 == pytest.approx(100.0, rel=1e-12)
    assert "metre" in model.source and model.warnings == ()
    assert model.areal_scale == pytest.approx(0.9996**2, rel=2e-3)  # UTM: within 0.1 %


def test_feet_are_converted_to_metres() -> None:
    """EPSG:2229 (California zone 5) is in US survey feet: 3 ft pixels are 0.836 m²."""
    model = area_model(wkt("EPSG:2229"), (3.0, 0.0, 6.4e6, 0.0, -3.0, 1.8e6), 10, 10)
    assert model.method == "projected"
    assert model.pixel_area_m2 == pytest.approx(9 * US_SURVEY_FOOT_M**2, rel=1e-12)
    assert "US survey foot" in model.source


@pytest.mark.parametrize("top_lat", [0.0, 60.0])
def test_geographic_rows_have_their_ellipsoidal_area(top_lat: float) -> None:
    """0.001° pixels: each row's area is the closed-form ellipsoidal cell, at either latitude."""
    step = 0.001
    model = area_model(wkt("EPSG:4326"), (step, 0.0, 10.0, 0.0, -step, top_lat), 5, 8)
    assert model.method == "geographic" and model.pixel_area_m2 is None
    rows = model.rows(0, 5)
    assert rows is not None
    for row, area in enumerate(rows):
        top, bottom = top_lat - row * step, top_lat - (row + 1) * step
        assert area == pytest.approx(cell_area_wgs84(bottom, top, step), rel=1e-9)
    assert "WGS 84" in model.source


def test_pixels_at_60_degrees_north_are_about_half_the_equators() -> None:
    """cos 60° = 0.5 on a sphere; 0.505 on the ellipsoid, whose meridians flatten poleward."""
    crs = pyproj.CRS(CRS.from_epsg(4326).to_wkt())
    equator = geodesic_row_areas(crs, (0.001, 0, 0, 0, -0.001, 0.0005), 1)[0]
    north = geodesic_row_areas(crs, (0.001, 0, 0, 0, -0.001, 60.0005), 1)[0]
    assert north / equator == pytest.approx(0.50506, rel=1e-4)
    assert equator == pytest.approx(12308.0, rel=1e-3)  # ~110.6 m x 111.3 m


def test_coarse_geographic_pixels_follow_their_parallels() -> None:
    """A 1° pixel: its edges are densified along the parallels, not cut as geodesics."""
    model = area_model(wkt("EPSG:4326"), (1.0, 0.0, 0.0, 0.0, -1.0, 61.0), 1, 1)
    rows = model.rows(0, 1)
    assert rows is not None
    assert rows[0] == pytest.approx(cell_area_wgs84(60.0, 61.0, 1.0), rel=1e-7)


def test_web_mercator_planar_areas_carry_a_warning() -> None:
    # A scene around 60°N in EPSG:3857: planar areas are about 4x the ground's.
    y = 8399737.89  # northing of 60°N
    model = area_model(wkt("EPSG:3857"), (10.0, 0.0, 1e6, 0.0, -10.0, y + 500), 100, 100)
    assert model.areal_scale == pytest.approx(4.0, rel=1e-2)
    assert len(model.warnings) == 1 and "distorts area" in model.warnings[0]


def test_without_a_crs_the_gsd_gives_areas_and_says_so() -> None:
    identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    model = area_model(None, identity, 10, 10, gsd_m=0.5, gsd_source="DeepGlobe's 0.5 m")
    assert (model.method, model.pixel_area_m2) == ("gsd", 0.25)
    assert "GSD 0.5 m from DeepGlobe's 0.5 m" in model.source
    plain = area_model(None, identity, 10, 10)
    assert plain.method == "pixels" and not plain.has_area and plain.rows(0, 3) is None
    with pytest.raises(ValueError, match="positive"):
        area_model(None, identity, 1, 1, gsd_m=0.0)


def test_a_crs_always_wins_over_a_gsd() -> None:
    model = area_model(wkt("EPSG:32633"), (2.0, 0, 0, 0, -2.0, 0), 1, 1, gsd_m=0.5)
    assert model.method == "projected" and model.pixel_area_m2 == pytest.approx(4.0)


def test_rotated_geographic_grids_and_grids_past_a_pole_are_refused() -> None:
    with pytest.raises(AreaError, match="rotated"):
        area_model(wkt("EPSG:4326"), (0.001, 0.0, 0.0, 0.0001, -0.001, 0.0), 2, 2)
    with pytest.raises(AreaError, match="beyond a pole"):
        area_model(wkt("EPSG:4326"), (1.0, 0.0, 0.0, 0.0, -1.0, 90.5), 2, 2)


def test_cumulative_rows_sum_each_rows_pixel_area() -> None:
    model = area_model(wkt("EPSG:4326"), (0.01, 0.0, 0.0, 0.0, -0.01, 45.0), 4, 1)
    rows = model.rows(0, 4)
    cumulative = model.cumulative_rows()
    assert rows is not None and cumulative is not None
    np.testing.assert_allclose(cumulative, np.concatenate([[0], np.cumsum(rows)]))
