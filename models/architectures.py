"""The segmentation architectures by name, the encoder helpers, and the local-file model loader.

``build_model("unet" | "resnet50_unet" | "deeplabv3plus", ...)`` resolves the builder through
``models.registry`` (the one list of names) and returns a plain Keras 3 functional model:
input ``(None, None, C)`` float (the image after ``models.normalization.normalize_image``), output
``(None, None, num_classes)`` float32 softmax probabilities of the same height and width, for
any height and width (see ``models.layers``). The architectures themselves live in
``models.unet``, ``models.resnet50_unet`` and ``models.deeplabv3plus``; the pretrainable
ResNet50 encoder the last two share (ImageNet preprocessing inside, weights) in
``models.encoders``.

Importing this module registers every custom object of the project (the layers of
``models.layers``, the Dice loss and metric, the streaming mIoU metric) under
``models.registry.KERAS_PACKAGE``, so ``keras.models.load_model("model.keras")`` needs no
``custom_objects`` once it has run; :func:`load_model` below does the import for you.
``models/__init__.py`` stays empty on purpose: ``import pipelines.core.metrics`` (pure NumPy,
used by ``landcover evaluate``) must not pull in TensorFlow.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib

import keras

# Imported for their side effect: registering the layers, loss and metrics so load_model finds
# them in a saved model.
from models import encoders, keras_metrics, layers, losses  # noqa: F401
from models.encoders import ENCODER_NAME
from models.registry import ARCHITECTURES, ENCODER_ARCHITECTURES, builder, check_architecture
from pipelines.core.palette import NUM_CLASSES

__all__ = [
    "ARCHITECTURES",
    "ENCODER_NAME",
    "CorruptModelError",
    "build_model",
    "get_encoder",
    "load_model",
    "set_encoder_trainable",
]


def build_model(
    name: str,
    *,
    num_classes: int = NUM_CLASSES,
    base_filters: int = 64,
    encoder_weights: str = "none",
    input_channels: int = 3,
) -> keras.Model:
    """Build an architecture by name (``ARCHITECTURES``); an unknown name lists the valid ones.

    ``base_filters`` is the width of U-Net's first stage (doubling per level), of
    ResNet50-U-Net's decoder (its stages are 4, 2, 1, 1/2, 1/4 times it, from /16 up to full
    resolution) and of DeepLabv3+'s head (ASPP and decoder 4x it, low-level projection 3/4 of
    it); 64 reproduces the published widths, small values (4-16) suit CPU runs and tests.
    ``encoder_weights`` applies to the architectures with a pretrainable encoder only
    (``ENCODER_ARCHITECTURES``): ``"none"`` (random init), ``"imagenet"`` (Keras's cache
    ``$KERAS_HOME/models``, else a download that fails at once offline), or a local path or
    ``gs://`` URI of a ResNet50 weights file (see ``models.encoders``). Those models take the
    same [0, 1] RGB as the others: the encoder applies ImageNet's input convention itself.
    """
    check_architecture(name)
    if base_filters < 1:
        raise ValueError(f"base_filters must be >= 1, got {base_filters}")
    options: dict[str, object] = {
        "num_classes": num_classes,
        "base_filters": base_filters,
        "input_channels": input_channels,
    }
    if name in ENCODER_ARCHITECTURES:
        options["encoder_weights"] = encoder_weights
    elif encoder_weights.lower() != "none":
        raise ValueError(
            f"{name} has no pretrained encoder; encoder_weights must be 'none', "
            f"got {encoder_weights!r} (use {', '.join(ENCODER_ARCHITECTURES)} for imagenet or "
            "a weights file)"
        )
    model: keras.Model = builder(name)(**options)
    return model


def get_encoder(model: keras.Model) -> keras.Model | None:
    """The pretrainable encoder nested in ``model``, or None (``unet`` has none)."""
    try:
        return model.get_layer(ENCODER_NAME)
    except ValueError:
        return None


def set_encoder_trainable(model: keras.Model, trainable: bool) -> None:
    """Freeze (False) or unfreeze (True) the encoder, e.g. frozen for the first epochs.

    A frozen encoder's batch norms also run in inference mode (Keras 3 semantics), which is what
    fine-tuning wants. After a change, take ``model.trainable_variables`` afresh; an optimizer
    must have been built on the full variable list (``optimizer.build(all trainable vars)``
    before freezing) to go on after unfreezing.
    """
    encoder = get_encoder(model)
    if encoder is None:
        raise ValueError(
            f"model {model.name!r} has no {ENCODER_NAME!r} layer to freeze; only "
            f"{', '.join(ENCODER_ARCHITECTURES)} have a pretrainable encoder"
        )
    encoder.trainable = trainable


class CorruptModelError(ValueError):
    """A ``model.keras`` that exists but cannot be read: truncated, damaged or not a model."""


# What Keras lets through from a damaged archive: the zip layer, the JSON config, the HDF5
# weights (h5py raises OSError) and a missing member (KeyError).
_DAMAGED_FILE_ERRORS = (
    zipfile.BadZipFile,
    json.JSONDecodeError,
    EOFError,
    OSError,
    KeyError,
    zlib.error,
)


def load_model(path: str, *, compile: bool = False, source: str | None = None) -> keras.Model:
    """Load a local ``model.keras`` written by training (``models.serving`` adds ``gs://``).

    ``safe_mode=True``: a model file cannot run arbitrary code on load (no lambda
    deserialization); the project's layers need none. The custom objects are registered by
    this module's imports, so no ``custom_objects`` are needed. ``compile=False`` by default:
    inference needs no optimizer or loss. A missing file raises ``FileNotFoundError``; a
    truncated or damaged one :class:`CorruptModelError` "corrupt model file <source>: <reason>"
    (Keras itself says "File not found" for a truncated archive). ``source`` is the URI to name
    in messages (the original ``gs://`` one when ``path`` is a local copy).
    """
    source = source or path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {source}")
    if not zipfile.is_zipfile(path):
        raise CorruptModelError(
            f"corrupt model file {source}: not a complete .keras zip archive "
            f"({os.path.getsize(path)} bytes; truncated, or not a model file)"
        )
    try:
        return keras.models.load_model(path, compile=compile, safe_mode=True)
    except _DAMAGED_FILE_ERRORS as err:
        raise CorruptModelError(
            f"corrupt model file {source}: {type(err).__name__}: {err}"
        ) from err
