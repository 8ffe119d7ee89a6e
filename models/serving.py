"""The model layer's serving API: load a trained model, predict class probabilities for tiles.

Batch inference (``pipelines.predict``), benchmarks and notebooks call only these two functions,
so how a model is loaded (local or ``gs://``, registered custom objects) and how its input is
normalised are decided here once; the normalisation is ``models.normalization``'s, the one the
training input (``models.input``) uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from models import normalization
from pipelines.io import storage

if TYPE_CHECKING:
    import keras


def load_model(model_file_uri: str) -> keras.Model:
    """Load a ``model.keras`` (local or ``gs://``) for inference, without optimizer or loss.

    Keras reads local files only, so a remote model is copied to a temporary file first. Loads
    with ``safe_mode=True``; a truncated or damaged file raises
    ``models.architectures.CorruptModelError`` naming ``model_file_uri``.
    """
    from models.architectures import load_model as load_keras_file

    with storage.local_copy(model_file_uri) as path:
        return load_keras_file(path, source=model_file_uri)


def predict_tiles(model: keras.Model, tiles: np.ndarray) -> np.ndarray:
    """uint8 tiles ``(N, H, W, 3)`` → float32 class probabilities ``(N, H, W, classes)``.

    One forward pass over the whole batch; the caller chooses the batch size. The pixels are
    normalised exactly as training normalises them.
    """
    if tiles.ndim != 4 or tiles.shape[-1] != 3:
        raise ValueError(f"expected uint8 tiles of shape (N, H, W, 3), got {tiles.shape}")
    probabilities = model.predict_on_batch(normalization.normalize_image(tiles))
    return np.asarray(probabilities, dtype=np.float32)
