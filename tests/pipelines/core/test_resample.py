"""Resampling by separable taps: exact area means, bilinear, nearest, mode, bit-exact windows."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.geo import PixelWindow
from pipelines.core.resample import (
    Regrid,
    apply_taps,
    image_method,
    label_method,
    make_taps,
    strips,
    target_shape,
)


@pytest.mark.parametrize(("n_in", "n_out"), [(8, 4), (10, 4), (7, 3), (5, 5), (3, 1)])
def test_area_taps_are_a_partition_each_output_weighs_one_each_input_its_share(
    n_in: int, n_out: int
) -> None:
    taps = make_taps(n_in, n_out, "area")
    assert np.allclose(taps.weight.sum(axis=1), 1.0, atol=1e-6)
    per_input = np.zeros(n_in)
    np.add.at(per_input, taps.index.ravel(), taps.weight.ravel())
    assert np.allclose(per_input, n_out / n_in, atol=1e-6)


def test_area_by_two_is_the_mean_of_each_2x2_block() -> None:
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    rows, cols = make_taps(4, 2, "area"), make_taps(4, 2, "area")
    out = apply_taps(apply_taps(image, rows, 0), cols, 1)
    assert out.tolist() == [[2.5, 4.5], [10.5, 12.5]]


def test_area_by_two_and_a_half_weighs_the_split_pixel_by_its_half() -> None:
    out = apply_taps(np.array([0, 0, 10, 20, 20], np.float32), make_taps(5, 2, "area"), 0)
    assert out.tolist() == pytest.approx([2.0, 18.0])  # (0+0+5)/2.5, (5+20+20)/2.5


def test_bilinear_reproduces_a_ramp_inside_and_clamps_at_the_edges() -> None:
    ramp = np.arange(4, dtype=np.float32) * 10  # centres at 0.5, 1.5, ... hold 0, 10, 20, 30
    out = apply_taps(ramp, make_taps(4, 8, "bilinear"), 0)
    assert out.tolist() == pytest.approx([0.0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30.0])


def test_nearest_takes_the_input_pixel_holding_the_centre() -> None:
    assert make_taps(4, 2, "nearest").index[:, 0].tolist() == [1, 3]  # centres 1.0, 3.0
    assert make_taps(2, 4, "nearest").index[:, 0].tolist() == [0, 0, 1, 1]
    assert make_taps(3, 3, "nearest").index[:, 0].tolist() == [0, 1, 2]


def test_methods_down_and_up() -> None:
    assert (image_method(10, 5), image_method(5, 10), image_method(5, 5)) == (
        "area",
        "bilinear",
        "nearest",
    )
    assert (label_method(10, 5), label_method(5, 10)) == ("area", "nearest")


def test_labels_down_take_the_mode_ties_to_the_lower_class_and_up_copy() -> None:
    ids = np.array([[3, 3, 1, 2], [3, 1, 2, 1]], np.uint8)
    regrid = Regrid.between((2, 4), (1, 2))
    whole = PixelWindow(0, 0, 2, 4)
    assert regrid.labels(PixelWindow(0, 0, 1, 2), ids, whole).tolist() == [[3, 1]]
    up = Regrid.between((2, 4), (4, 8))
    doubled = ids.repeat(2, 0).repeat(2, 1)
    assert np.array_equal(up.labels(PixelWindow(0, 0, 4, 8), ids, whole), doubled)


def test_nodata_is_not_averaged_in_and_a_valid_input_keeps_its_output_pixel_valid() -> None:
    pixels = np.full((4, 4, 3), 100, np.uint8)
    pixels[:, :1] = 0
    valid = np.ones((4, 4), bool)
    valid[:, :1] = False
    valid[:2, 2:] = False
    pixels[:2, 2:] = 0
    regrid = Regrid.between((4, 4), (2, 2))
    out, out_valid = regrid.pixels(PixelWindow(0, 0, 2, 2), pixels, valid, PixelWindow(0, 0, 4, 4))
    assert out_valid.tolist() == [[True, False], [True, True]]
    assert out[..., 0].tolist() == [[100, 0], [100, 100]]


@pytest.mark.parametrize(
    ("source", "target"), [((37, 53), (18, 21)), ((20, 24), (40, 61)), ((33, 40), (13, 80))]
)
def test_a_window_of_the_output_is_bit_identical_to_the_whole_output(
    source: tuple[int, int], target: tuple[int, int]
) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (*source, 3), dtype=np.uint8)
    valid = rng.random(source) > 0.1
    ids = rng.integers(0, 7, source, dtype=np.uint8)
    probs = rng.random((*source, 7)).astype(np.float32)
    regrid = Regrid.between(source, target)
    everything = PixelWindow(0, 0, *source)
    whole = PixelWindow(0, 0, *target)
    full_pixels, full_valid = regrid.pixels(whole, pixels, valid, everything)
    full_ids = regrid.labels(whole, ids, everything)
    full_probs = regrid.values(whole, probs, everything)
    windows = (PixelWindow(3, 5, 7, 9), PixelWindow(0, 0, 1, target[1]), PixelWindow(10, 2, 3, 4))
    for window in windows:
        rows, cols = slice(window.row_off, window.row_stop), slice(window.col_off, window.col_stop)
        src = regrid.source_window(window)
        cut = (slice(src.row_off, src.row_stop), slice(src.col_off, src.col_stop))
        got, got_valid = regrid.pixels(window, pixels[cut], valid[cut], src)
        assert np.array_equal(got, full_pixels[rows, cols])
        assert np.array_equal(got_valid, full_valid[rows, cols])
        assert np.array_equal(regrid.values(window, probs[cut], src), full_probs[rows, cols])
        lab = regrid.source_window(window, labels=True)
        lab_cut = (slice(lab.row_off, lab.row_stop), slice(lab.col_off, lab.col_stop))
        assert np.array_equal(regrid.labels(window, ids[lab_cut], lab), full_ids[rows, cols])


def test_target_shape_rounds_to_whole_pixels_and_strips_cover_the_rows() -> None:
    assert target_shape(2448, 2448, 2448 / 512, 2448 / 512) == (512, 512)
    assert target_shape(301, 257, 2.0, 0.5) == (150, 514)
    assert target_shape(3, 3, 10.0, 10.0) == (1, 1)
    assert [w.row_off for w in strips(10, 4, 4)] == [0, 4, 8]
    assert strips(10, 4, 4)[-1].shape == (2, 4)
