"""The one pixel normalisation: uint8 → [0, 1] float32, for NumPy and TF alike, shared by the
training input and serving."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import tensorflow as tf

from models import input as training_input
from models import normalization, serving


def test_scales_uint8_to_unit_floats() -> None:
    scaled = normalization.normalize_image(np.array([0, 51, 255], np.uint8))
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled, [0.0, 0.2, 1.0], rtol=1e-6)
    assert scaled[0] == 0.0 and scaled[-1] == 1.0
    tensor = normalization.normalize_image(tf.constant([0, 255], tf.uint8))
    assert tensor.dtype == tf.float32 and tensor.numpy().tolist() == [0.0, 1.0]
    assert normalization.PIXEL_SCALE == 1.0 / 255.0


def test_training_and_serving_share_it() -> None:
    assert training_input.normalize_image is normalization.normalize_image
    assert serving.normalization is normalization


def test_numpy_callers_do_not_import_tensorflow() -> None:
    code = (
        "import sys, numpy as np, models.normalization as n; "
        "n.normalize_image(np.zeros(2, np.uint8)); sys.exit('tensorflow' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
