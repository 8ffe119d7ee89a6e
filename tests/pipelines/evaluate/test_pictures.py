"""The evaluation pictures: exact class colours in previews, the palette legend, PNGs out."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.core.palette import CLASS_COLORS, CLASS_NAMES, NUM_CLASSES
from pipelines.evaluate.pictures import (
    PREVIEW_SIDE,
    confusion_picture,
    legend_handles,
    preview,
    scene_picture,
)


def _size(png: bytes) -> tuple[int, int]:
    assert png[:4] == b"\x89PNG"
    with Image.open(io.BytesIO(png)) as picture:
        return picture.size


@pytest.mark.parametrize(
    ("shape", "step"), [((2448, 2448, 3), 4), ((612, 300), 1), ((613, 10), 2), ((5, 1300), 3)]
)
def test_preview_takes_every_nth_pixel_so_colours_stay_exact(shape: tuple, step: int):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    small = preview(array)
    np.testing.assert_array_equal(small, array[::step, ::step])
    assert max(small.shape[:2]) <= PREVIEW_SIDE


def test_legend_is_the_palette_in_class_order():
    handles = legend_handles()
    assert [h.get_label() for h in handles] == list(CLASS_NAMES)
    colours = np.array([h.get_facecolor()[:3] for h in handles])
    np.testing.assert_allclose(colours * 255, CLASS_COLORS, atol=1e-6)


def test_confusion_picture_draws_any_matrix_including_empty_rows():
    cm = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    cm[0, 0], cm[0, 1], cm[3, 3] = 90, 10, 5  # most truth rows empty: no division by zero
    width, height = _size(confusion_picture(cm, "unet: mIoU 0.900 over 2 scenes"))
    assert width > 300 and height > 300
    _size(confusion_picture(np.zeros_like(cm), "nothing scored"))


def test_scene_picture_has_a_panel_per_input_and_a_probability_row_when_given():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, NUM_CLASSES, (40, 30)).astype(np.uint8)
    image = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    two = [("unet", ids), ("second", None)]  # a missing second prediction is "not available"
    flat_w, flat_h = _size(scene_picture("a", image, ids, two))
    assert flat_w > 2 * flat_h  # four panels side by side
    three_w, _ = _size(scene_picture("a", None, ids, two[:1]))
    assert three_w < flat_w
    probabilities = rng.random((40, 30, NUM_CLASSES), dtype=np.float32)
    tall_w, tall_h = _size(scene_picture("a", image, ids, two, probabilities))
    assert tall_h > flat_h * 1.3 and abs(tall_w - flat_w) < flat_w * 0.2
