"""The segmentation architectures by name, the encoder helpers, and the local-file model loader.

``build_model("unet" | "resnet50_unet", ...)`` resolves the builder through ``models.registry``
(the one list of names) and returns a plain Keras 3 functional model: input ``(None, None, C)``
float (the image after ``models.normalization.normalize_image``), output
``(None, None, num_classes)`` float32 softmax probabilities of the same height and width, for
any height and width (see ``models.layers``). The architectures themselves live in
``models.unet`` and ``models.resnet50_unet``.

Importing this module registers every custom object of the project (the layers of
``models.layers``, the Dice loss and metric, the streaming mIoU metric) under
``models.registry.KERAS_PACKAGE``, so ``keras.models.load_model("model.keras")`` needs no
``custom_objects`` once it has run; :func:`load_model` below does the import for you.
``models/__init__.py`` stays empty on purpose: ``import pipelines.core.metrics`` (pure NumPy,
used by ``landcover evaluate``) must not pull in TensorFlow.
"""

from __future__ import annotations

import keras

# Imported for their side effect: registering the layers, loss and metrics so load_model finds
# them in a saved model.
from models import keras_metrics, layers, losses  # noqa: F401
from models.registry import ARCHITECTURES, ENCODER_ARCHITECTURES, builder, check_architecture
from models.resnet50_unet import ENCODER_NAME
from pipelines.core.palette import NUM_CLASSES

__all__ = [
    "ARCHITECTURES",
    "ENCODER_NAME",
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

    ``base_filters`` is the width of U-Net's first stage (doubling per level) and of
    ResNet50-U-Net's decoder (its stages are 4, 2, 1, 1/2, 1/4 times it, from /16 up to full
    resolution); 64 reproduces the published widths, small values (4-16) suit CPU runs and tests.
    ``encoder_weights`` applies to the architectures with a pretrainable encoder only
    (``ENCODER_ARCHITECTURES``): ``"none"`` (random init), ``"imagenet"`` (Keras's own
    downloader, needs the internet) or a local weights file path.
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
            f"model {model.name!r} has no {ENCODER_NAME!r} layer to freeze; only resnet50_unet "
            "has a pretrainable encoder"
        )
    encoder.trainable = trainable


def load_model(path: str, *, compile: bool = False) -> keras.Model:
    """Load a local ``model.keras`` written by training (``models.serving`` adds ``gs://``).

    The custom objects are registered by this module's imports, so no ``custom_objects`` are
    needed. ``compile=False`` by default: inference needs no optimizer or loss.
    """
    return keras.models.load_model(path, compile=compile)
