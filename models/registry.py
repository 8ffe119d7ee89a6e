"""The architectures the model layer answers to, each described once by its spec.

Every fact about an architecture that something outside its builder needs lives in its spec:
its name, what it is (one line for ``--help``, the flows and the docs), whether it has a
pretrainable encoder (``--encoder-weights``, ``--freeze-encoder-epochs``), its total stride
(what inputs are padded to, and what tile sides should be a multiple of) and how
``base_filters`` sets its widths. The command line, the training config, the flows'
deployments and the benchmarks derive their lists and texts from :data:`SPECS`; nothing else
names an architecture.

Kept free of Keras and TensorFlow (the width rules are plain arithmetic, shared with the
builders), so ``--help`` and option validation stay instant. Builders are resolved lazily by
:func:`builder`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Every custom layer, loss and metric registers under this package, so a saved ``model.keras``
# names them ``landcover>ClassName`` and reloads without ``custom_objects``.
KERAS_PACKAGE = "landcover"

UNET_DEPTH = 4
RESNET50_STRIDE = 32
DEEPLAB_OUTPUT_STRIDE = 16


def unet_widths(base_filters: int) -> tuple[int, ...]:
    """U-Net stage widths from the first stage down to the bottleneck: 64 … 1024 at 64."""
    return tuple(base_filters * 2**level for level in range(UNET_DEPTH + 1))


def resnet50_decoder_filters(base_filters: int) -> tuple[int, ...]:
    """ResNet50-U-Net decoder widths from /16 up to full resolution: 256 … 16 at 64."""
    return tuple(max(1, base_filters * 4 // 2**i) for i in range(5))


def deeplab_widths(base_filters: int) -> tuple[int, int]:
    """DeepLabv3+ (ASPP and decoder width, low-level projection width): (256, 48) at 64."""
    return max(1, base_filters * 4), max(1, base_filters * 3 // 4)


def _unet_width_text(base_filters: int) -> str:
    return f"encoder/decoder widths {list(unet_widths(base_filters))}"


def _resnet50_unet_width_text(base_filters: int) -> str:
    return (
        f"ResNet50 encoder 64-2048, decoder widths {list(resnet50_decoder_filters(base_filters))}"
    )


def _deeplab_width_text(base_filters: int) -> str:
    head, low_level = deeplab_widths(base_filters)
    return f"ResNet50 encoder 64-2048, ASPP/decoder width {head}, stride-4 projection {low_level}"


@dataclass(frozen=True)
class ArchitectureSpec:
    """One architecture: what it is and the facts other layers derive from it."""

    name: str
    summary: str  # one line: what it is
    builder: str  # "module:function", called as build(num_classes=…, base_filters=…, …)
    stride: int  # total stride: inputs are reflect-padded to a multiple of it inside the model
    encoder: str | None  # the pretrainable backbone (ImageNet weights, freezing), or None
    width_text: Callable[[int], str]  # the widths ``base_filters`` gives, in words

    @property
    def has_encoder(self) -> bool:
        return self.encoder is not None

    def describe_widths(self, base_filters: int) -> str:
        return f"base_filters={base_filters} ({self.width_text(base_filters)})"


SPECS: tuple[ArchitectureSpec, ...] = (
    ArchitectureSpec(
        name="unet",
        summary="Ronneberger's U-Net from scratch: 4 down/4 up stages of two 3x3 conv + BN + "
        "ReLU, skip concatenations",
        builder="models.unet:build_unet",
        stride=2**UNET_DEPTH,
        encoder=None,
        width_text=_unet_width_text,
    ),
    ArchitectureSpec(
        name="resnet50_unet",
        summary="a U-Net decoder on a keras.applications ResNet50 encoder (stride 32), skips "
        "from the stem and stages 2-4 plus a full-resolution image skip",
        builder="models.resnet50_unet:build_resnet50_unet",
        stride=RESNET50_STRIDE,
        encoder="resnet50",
        width_text=_resnet50_unet_width_text,
    ),
    ArchitectureSpec(
        name="deeplabv3plus",
        summary="DeepLabv3+: ResNet50 at output stride 16, ASPP (rates 6/12/18 + image "
        "pooling), a decoder fusing the stride-4 features",
        builder="models.deeplabv3plus:build_deeplabv3plus",
        stride=DEEPLAB_OUTPUT_STRIDE,
        encoder="resnet50",
        width_text=_deeplab_width_text,
    ),
)
_BY_NAME: dict[str, ArchitectureSpec] = {spec.name: spec for spec in SPECS}
ARCHITECTURES: tuple[str, ...] = tuple(_BY_NAME)
# Architectures whose encoder is a pretrained backbone (freezing, ImageNet weights apply).
ENCODER_ARCHITECTURES: tuple[str, ...] = tuple(s.name for s in SPECS if s.has_encoder)


def check_architecture(name: str) -> str:
    """``name`` if it is registered; otherwise ``ValueError`` listing the valid names."""
    if name not in _BY_NAME:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(ARCHITECTURES)}")
    return name


def spec(name: str) -> ArchitectureSpec:
    """The spec of architecture ``name`` (``ValueError`` listing the valid names)."""
    return _BY_NAME[check_architecture(name)]


def architectures_text(names: tuple[str, ...] = ARCHITECTURES, sep: str = " | ") -> str:
    """``unet | resnet50_unet | deeplabv3plus``: the names for a help line."""
    return sep.join(check_architecture(n) for n in names)


def parse_architectures(text: str | None) -> tuple[str, ...]:
    """A comma-separated list of names (``--archs``), each checked; None or "" = all."""
    if not text:
        return ARCHITECTURES
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ValueError(f"no architecture named; valid: {', '.join(ARCHITECTURES)}")
    return tuple(check_architecture(n) for n in names)


def builder(name: str) -> Callable[..., Any]:
    """The function that builds architecture ``name`` (imports Keras on first use)."""
    module, function = spec(name).builder.split(":")
    return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]
