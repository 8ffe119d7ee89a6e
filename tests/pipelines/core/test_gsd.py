"""GSD arithmetic and rules: tolerance, per-axis sizes, degrees on the ellipsoid, records."""

from __future__ import annotations

import math

import pytest

from pipelines.core.gsd import (
    DatasetGsd,
    Gsd,
    GsdError,
    check_gsd,
    check_uniform,
    degree_lengths,
    format_gsd,
    geographic_gsd,
    linear_gsd,
    model_gsd,
    native_key,
    same_gsd,
)

WGS84 = (6378137.0, 298.257223563)


def test_gsds_within_one_percent_are_one_gsd_and_beyond_are_not() -> None:
    assert same_gsd(0.5, 0.504)
    assert not same_gsd(0.5, 0.506)
    assert Gsd(0.5, 0.503, "t").square and Gsd(0.5, 0.503, "t").matches(0.5)
    assert not Gsd(0.5, 0.6, "t").matches(0.5)


def test_a_gsd_of_pixels_that_are_not_square_is_refused_with_both_sizes() -> None:
    with pytest.raises(GsdError, match=r"0.787 x 1.111 m .* not square"):
        _ = Gsd(0.787, 1.111, "transform").metres
    assert Gsd.uniform(0.5, "t").metres == 0.5


@pytest.mark.parametrize("bad", [0, -1.0, math.nan, math.inf, True, "0.5"])
def test_gsd_values_must_be_positive_finite_numbers(bad: object) -> None:
    with pytest.raises(ValueError, match="gsd"):
        check_gsd(bad)


def test_linear_units_scale_the_pixel_size_and_a_point_scale_divides_it() -> None:
    feet = (2.0, 0.0, 1e6, 0.0, -2.0, 2e6)
    assert linear_gsd(feet, 0.3048006096) == pytest.approx((0.6096012, 0.6096012))
    # a rotated grid: the pixel's side is the step's length, whatever its direction
    rotated = (0.3, 0.4, 0.0, 0.4, -0.3, 0.0)
    assert linear_gsd(rotated, 1.0) == pytest.approx((0.5, 0.5))
    assert linear_gsd(feet, 1.0, (2.0, 4.0)) == pytest.approx((1.0, 0.5))


@pytest.mark.parametrize("latitude", [0.0, 45.0, 60.0, -33.9])
def test_degree_lengths_on_wgs84_equal_geodesic_distances(latitude: float) -> None:
    from pyproj import Geod  # an independent reference: geodesics on the same ellipsoid

    geod = Geod(ellps="WGS84")
    step = 1e-4
    lon_ref = geod.inv(0.0, latitude, step, latitude)[2] / step
    lat_ref = geod.inv(0.0, latitude - step / 2, 0.0, latitude + step / 2)[2] / step
    lon, lat = degree_lengths(latitude, *WGS84)
    assert lon == pytest.approx(lon_ref, rel=1e-8)
    assert lat == pytest.approx(lat_ref, rel=1e-8)


def test_degree_lengths_at_the_equator_and_on_a_sphere() -> None:
    lon, lat = degree_lengths(0.0, *WGS84)
    assert (lon, lat) == (pytest.approx(111319.49, abs=0.01), pytest.approx(110574.28, abs=0.01))
    sphere = degree_lengths(60.0, 6371000.0, 0.0)
    assert sphere[0] == pytest.approx(math.pi / 180 * 6371000.0 * 0.5)


def test_geographic_pixels_are_converted_per_axis_at_the_latitude() -> None:
    transform = (1e-5, 0.0, 10.0, 0.0, -1e-5, 45.0)
    x, y = geographic_gsd(transform, 45.0, *WGS84)
    assert x == pytest.approx(0.7884684, rel=1e-6)
    assert y == pytest.approx(1.1113178, rel=1e-6)
    with pytest.raises(GsdError, match=r"outside -90\.\.90"):
        geographic_gsd(transform, 91.0, *WGS84)


def test_a_pixel_size_that_varies_across_the_scene_is_refused_naming_the_places() -> None:
    check_uniform({"top": (1.0, 1.0), "bottom": (1.005, 1.0)}, "fix it")
    with pytest.raises(GsdError, match=r"pixel size x varies by 2.0 % .*top 1 m, bottom 1.02 m"):
        check_uniform({"top": (1.0, 1.0), "bottom": (1.02, 1.0)}, "fix it")


def test_dataset_gsd_round_trips_and_says_how_it_resampled() -> None:
    native = DatasetGsd(0.5, {"0.5": 3})
    assert native.to_dict() == {
        "metres_per_pixel": 0.5,
        "native": {"0.5": 3},
        "target": None,
        "resampling": None,
    }
    target = DatasetGsd(1.0, {"0.5": 2, "0.3": 1}, target=1.0)
    data = target.to_dict()
    assert data["resampling"] == {
        "image": {"down": "area", "up": "bilinear"},
        "labels": {"down": "mode", "up": "nearest"},
    }
    assert list(data["native"]) == ["0.3", "0.5"]
    assert DatasetGsd.from_dict(data) == DatasetGsd(1.0, {"0.3": 1, "0.5": 2}, 1.0)
    with pytest.raises(ValueError, match="metres_per_pixel"):
        DatasetGsd.from_dict({"metres_per_pixel": -1})


def test_native_keys_and_model_gsd() -> None:
    assert native_key(Gsd.uniform(2.390625, "t")) == "2.39062"
    assert native_key(Gsd(0.787, 1.111, "t")) == "0.787x1.111"
    assert format_gsd(0.30480061) == "0.304801"
    assert model_gsd({"input": {"gsd_m": 0.5}}) == 0.5
    assert model_gsd({"input": {}}) is None and model_gsd({}) is None
