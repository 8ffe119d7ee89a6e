"""Shared pieces of the predict tests: a tiny saved model, scene images, and the references the
stitched predictions are compared with.

Offered as fixtures rather than an importable module so they work under any pytest import mode
(the suite runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models import normalization
from pipelines.core import tiling
from pipelines.core.palette import NUM_CLASSES
from pipelines.core.tiling import TILE_OVERLAP, TILE_SIZE
from pipelines.predict.handler import KerasSegmentationHandler


def _local_model():
    """Translation-equivariant: two 3x3 'same' convs + softmax, no pooling (radius 2 < margin)."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    # a large bias spread makes classes differ clearly, so argmax ties are not an issue
    logits = keras.layers.Conv2D(NUM_CLASSES, 3, padding="same")(x)
    probabilities = keras.layers.Activation("softmax", dtype="float32")(logits * 4.0)
    return keras.Model(image, probabilities)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the tiny model as ``model.keras``, as training leaves it."""
    folder = tmp_path_factory.mktemp("model")
    _local_model().save(folder / "model.keras")
    return folder


@pytest.fixture(scope="module")
def model(model_dir: Path):
    """The tiny model loaded back through the serving API, as the handler loads it."""
    from models.serving import load_model

    return load_model(str(model_dir / "model.keras"))


def _image(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth-ish content so the model's classes form regions, plus pixel noise
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))[:height, :width]
    noise = rng.integers(-20, 21, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def make_image() -> Callable[[int, int, int], np.ndarray]:
    """``make_image(height, width, seed)`` → a uint8 RGB scene: 8-px blocks plus pixel noise."""
    return _image


def _encode(image: np.ndarray, fmt: str, **options: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def encode_image() -> Callable[..., bytes]:
    """``encode_image(array, "PNG" | "JPEG" | "TIFF", **PIL options)`` → the file's bytes."""
    return _encode


def _reference(model: Any, image: np.ndarray, tile: int, overlap: int) -> np.ndarray:
    """The model on the whole scene, reflect-padded to the tile grid, cropped back."""
    padded = tiling.pad_to_grid(image, tile, overlap)
    probabilities = model.predict_on_batch(normalization.normalize_image(padded[None]))[0]
    return np.asarray(probabilities)[: image.shape[0], : image.shape[1]]


@pytest.fixture
def reference() -> Callable[[Any, np.ndarray, int, int], np.ndarray]:
    """``reference(model, image, tile, overlap)``: what a seamless stitch must reproduce."""
    return _reference


def _predict_image(
    image: np.ndarray,
    model: Any,
    *,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = 4,
) -> tiling.TileBlender:
    """In-process prediction of one decoded scene (no Beam): tiles → batches → blended stitch.

    The same handler, tiling and blending as the Beam job, without a pipeline around them.
    """
    handler = KerasSegmentationHandler("", batch_size)
    tiles = tiling.cut_tiles(image, tile, overlap)
    blender = tiling.TileBlender(image.shape[0], image.shape[1], tile, overlap, NUM_CLASSES)
    for start in range(0, len(tiles), batch_size):
        results = handler.run_inference(tiles[start : start + batch_size], model)
        for offset, result in enumerate(results):
            blender.add(start + offset, np.asarray(result.inference))
    return blender


@pytest.fixture
def predict_image() -> Callable[..., tiling.TileBlender]:
    """``predict_image(image, model, *, tile, overlap, batch_size)`` → the filled TileBlender."""
    return _predict_image
