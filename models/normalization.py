"""The pixel normalisation every model sees, in one place for training and serving.

The training input (``models.input``) and the serving API (``models.serving``, which batch
inference and benchmarks call) both normalise through :func:`normalize_image`, so a model never
sees pixels scaled one way in training and another in production. It lives in the model layer
because the scale is a property of the trained model (``metadata.json`` names it), not of the
image codecs.

Importing this module does not import TensorFlow: NumPy callers never pay for it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PIXEL_SCALE: float = 1.0 / 255.0


def normalize_image(image: Any) -> Any:
    """uint8 pixels → float32 in [0, 1]; NumPy in, NumPy out; TF tensor in, TF tensor out."""
    if isinstance(image, np.ndarray):
        return image.astype(np.float32) * np.float32(PIXEL_SCALE)
    import tensorflow as tf  # only TF callers pay for the import

    return tf.cast(image, tf.float32) * tf.constant(PIXEL_SCALE, tf.float32)


def describe_normalization() -> str:
    """How inputs are normalised, for ``metadata.json`` (names the function, not a copy of it)."""
    return f"{__name__}.{normalize_image.__name__} (uint8 / 255 → float32)"
