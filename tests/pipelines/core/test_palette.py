"""The DeepGlobe palette and the challenge's decode rule: binarize at 128, then look up."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.palette import (
    ACTIVE_CLASSES,
    CLASS_COLORS,
    CLASS_NAMES,
    NUM_CLASSES,
    UNKNOWN,
    class_pixel_counts,
    decode_mask,
    encode_mask,
    one_hot,
)


def _rgb(*colors: tuple[int, int, int]) -> np.ndarray:
    return np.array([colors], dtype=np.uint8)


def test_palette_is_deepglobes() -> None:
    assert dict(zip(CLASS_NAMES, map(tuple, CLASS_COLORS.tolist()), strict=True)) == {
        "urban": (0, 255, 255),
        "agriculture": (255, 255, 0),
        "rangeland": (255, 0, 255),
        "forest": (0, 255, 0),
        "water": (0, 0, 255),
        "barren": (255, 255, 255),
        "unknown": (0, 0, 0),
    }
    assert NUM_CLASSES == 7 and UNKNOWN == 6 and ACTIVE_CLASSES == (0, 1, 2, 3, 4, 5)


def test_exact_colors_decode_to_their_class() -> None:
    assert decode_mask(CLASS_COLORS[None]).tolist() == [[0, 1, 2, 3, 4, 5, 6]]


def test_noisy_colors_binarize_at_128() -> None:
    noisy = _rgb(
        (130, 250, 10),  # agriculture (255, 255, 0) after thresholding
        (127, 128, 200),  # urban: 127 is below the threshold, 128 is at it
        (5, 140, 131),  # urban
        (200, 3, 129),  # rangeland
        (100, 200, 90),  # forest
        (0, 0, 128),  # water
        (128, 128, 128),  # barren
        (127, 127, 127),  # unknown
    )
    assert decode_mask(noisy).tolist() == [[1, 0, 0, 2, 3, 4, 5, 6]]


def test_off_palette_colors_are_unknown() -> None:
    # Pure red is the only binarized corner outside the palette.
    assert decode_mask(_rgb((255, 0, 0), (200, 20, 60), (128, 0, 127))).tolist() == [[6, 6, 6]]


def test_decode_rejects_wrong_shapes_and_dtypes() -> None:
    with pytest.raises(ValueError, match="RGB"):
        decode_mask(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        decode_mask(np.zeros((4, 4, 3), np.float32))


def test_encode_is_the_inverse_of_decode() -> None:
    ids = np.random.default_rng(0).integers(0, NUM_CLASSES, (9, 11)).astype(np.uint8)
    assert np.array_equal(decode_mask(encode_mask(ids)), ids)
    with pytest.raises(ValueError, match="outside"):
        encode_mask(np.full((2, 2), 7, np.uint8))


def test_one_hot_and_pixel_counts() -> None:
    ids = np.array([[0, 6, 6], [1, 1, 1]], np.uint8)
    hot = one_hot(ids)
    assert hot.shape == (2, 3, 7) and hot.dtype == np.uint8
    assert np.array_equal(hot.argmax(-1), ids) and hot.sum() == ids.size
    assert class_pixel_counts(ids).tolist() == [1, 3, 0, 0, 0, 0, 2]
