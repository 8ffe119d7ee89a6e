"""The shared layers: centred reflect padding to a multiple, the crop that undoes it, and the
resize to another tensor's run-time size."""

from __future__ import annotations

import numpy as np

from models.layers import CropLike, PadToMultiple, ResizeLike


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


def test_resize_like_takes_the_reference_size_at_run_time_and_broadcasts_from_1x1():
    pooled = images(1, 1, batch=2)
    reference = images(13, 7, batch=2)
    resized = np.asarray(ResizeLike()([pooled, reference]))
    np.testing.assert_allclose(resized, np.broadcast_to(pooled, (2, 13, 7, 3)), rtol=1e-6)
    x = images(4, 4)
    up = np.asarray(ResizeLike(interpolation="nearest")([x, images(8, 8)]))
    np.testing.assert_array_equal(up, x.repeat(2, axis=1).repeat(2, axis=2))
    assert ResizeLike.from_config(
        ResizeLike(interpolation="nearest").get_config()
    ).interpolation == ("nearest")
