"""The names the model layer answers to: architectures and the Keras serialization package.

Kept free of Keras and TensorFlow so the command line, the training config and the flows can
validate an architecture name (and print ``--help``) without importing either. Builders are
resolved lazily by :func:`builder`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# Every custom layer, loss and metric registers under this package, so a saved ``model.keras``
# names them ``landcover>ClassName`` and reloads without ``custom_objects``.
KERAS_PACKAGE = "landcover"

# name → "module:function" that builds it (``build(num_classes=…, base_filters=…, …)``).
_BUILDERS: dict[str, str] = {
    "unet": "models.unet:build_unet",
    "resnet50_unet": "models.resnet50_unet:build_resnet50_unet",
    "deeplabv3plus": "models.deeplabv3plus:build_deeplabv3plus",
}
ARCHITECTURES: tuple[str, ...] = tuple(_BUILDERS)
# Architectures whose encoder is a pretrained backbone (freezing, ImageNet weights apply).
ENCODER_ARCHITECTURES: tuple[str, ...] = ("resnet50_unet", "deeplabv3plus")


def check_architecture(name: str) -> str:
    """``name`` if it is registered; otherwise ``ValueError`` listing the valid names."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(ARCHITECTURES)}")
    return name


def builder(name: str) -> Callable[..., Any]:
    """The function that builds architecture ``name`` (imports Keras on first use)."""
    module, function = _BUILDERS[check_architecture(name)].split(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]
