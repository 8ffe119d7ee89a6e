"""The shared layers: centred reflect padding to a multiple and the crop that undoes it."""

from __future__ import annotations

import numpy as np

from models.layers import CropLike, PadToMultiple


def images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def test_pad_to_multiple_reflects_evenly_and_crop_like_undoes_it():
    x = images(97, 75, batch=2)
    padded = np.asarray(PadToMultiple(32, mode="reflect")(x))
    # 97 → 128 (15 above, 16 below), 75 → 96 (10 left, 11 right), mirrored without the edge.
    expected = np.pad(x, [(0, 0), (15, 16), (10, 11), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(np.asarray(CropLike()([padded, x])), x)


def test_pad_to_multiple_leaves_multiples_alone():
    x = images(64, 96)
    np.testing.assert_array_equal(np.asarray(PadToMultiple(32)(x)), x)
