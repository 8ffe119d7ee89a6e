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
from pipelines.core.tiling import TTA_MODES, TTA_TRANSFORMS
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


def input_multiple(model: keras.Model) -> int:
    """The side a tile should be a multiple of for ``model``: its ``PadToMultiple`` (a tile off
    the multiple is reflect-padded up to it inside the model: model work on no scene pixel),
    or 1 for a model without one."""
    from models.layers import PadToMultiple

    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, PadToMultiple):
            return int(layer.multiple)
    return 1


def _forward(tiles: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = tiles[:, :, ::-1] if flip else tiles
    return np.rot90(out, k, axes=(1, 2))


def _inverse(predictions: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = np.rot90(predictions, -k, axes=(1, 2))
    return out[:, :, ::-1] if flip else out


def predict_tiles(model: keras.Model, tiles: np.ndarray, tta: str = "none") -> np.ndarray:
    """uint8 tiles ``(N, H, W, 3)`` → float32 class probabilities ``(N, H, W, classes)``.

    One forward pass over the whole batch per transform; the caller chooses the batch size. The
    pixels are normalised exactly as training normalises them. ``tta``: ``none``, ``flip`` (mean
    over the 4 flips) or ``d4`` (mean over the 8 rotations and reflections), each prediction
    mapped back before averaging; the argmax of the mean is the augmented prediction.
    """
    if tiles.ndim != 4 or tiles.shape[-1] != 3:
        raise ValueError(f"expected uint8 tiles of shape (N, H, W, 3), got {tiles.shape}")
    if tta not in TTA_TRANSFORMS:
        raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
    normalized = normalization.normalize_image(tiles)
    total: np.ndarray | None = None
    transforms = TTA_TRANSFORMS[tta]
    for k, flip in transforms:
        batch = np.ascontiguousarray(_forward(np.asarray(normalized), k, flip))
        prediction = _inverse(np.asarray(model.predict_on_batch(batch), np.float32), k, flip)
        total = prediction.copy() if total is None else total + prediction
    assert total is not None
    if len(transforms) > 1:
        total /= len(transforms)
    return np.ascontiguousarray(total, dtype=np.float32)
