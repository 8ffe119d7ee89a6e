"""U-Net: output size for any input size, and exactly the specified layers."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models.unet import build_unet, unet_widths
from pipelines.core.palette import NUM_CLASSES

# 612 is DeepGlobe's patch size and not a multiple of 32; 97x75 is odd in both directions.
SIZES = [(612, 612), (640, 640), (97, 75)]


@pytest.fixture(scope="module")
def tiny_unet() -> keras.Model:
    return build_unet(base_filters=4)


def images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def assert_probabilities(y, batch: int, height: int, width: int) -> None:
    y = np.asarray(y)
    assert y.shape == (batch, height, width, NUM_CLASSES)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_unet_output_matches_input_size(tiny_unet, height, width):
    assert_probabilities(
        tiny_unet(images(height, width, batch=2), training=False), 2, height, width
    )


def _unet_param_count(base: int, channels: int = 3, classes: int = NUM_CLASSES) -> int:
    """Parameters of the U-Net as specified: conv 3x3 without bias + batch norm (4 per channel)
    per conv, 2x2 transposed conv with bias per up stage, 1x1 conv with bias at the head."""

    def conv_bn(cin: int, cout: int) -> int:
        return 9 * cin * cout + 4 * cout

    total, cin = 0, channels
    for level in range(4):
        width = base * 2**level
        total += conv_bn(cin, width) + conv_bn(width, width)
        cin = width
    total += conv_bn(8 * base, 16 * base) + conv_bn(16 * base, 16 * base)
    for level in reversed(range(4)):
        width = base * 2**level
        total += 4 * (2 * width) * width + width  # up-conv from the level below (2x wider)
        total += conv_bn(2 * width, width) + conv_bn(width, width)  # after the skip concat
    return total + base * classes + classes


def test_unet_has_the_specified_layers(tiny_unet):
    assert tiny_unet.count_params() == _unet_param_count(4) == 122_859
    # The default (base 64) is the published 31M-parameter U-Net (counted, not built, here).
    assert _unet_param_count(64) == 31_049_799
    convs = [layer for layer in tiny_unet.layers if type(layer) is keras.layers.Conv2D]
    assert len(convs) == 2 * (4 + 1 + 4) + 1  # two per stage and bottleneck, plus the head
    assert all(conv.kernel_size == (3, 3) for conv in convs[:-1])
    assert [layer.name for layer in tiny_unet.layers if "concat" in layer.name] == [
        "up4_concat",
        "up3_concat",
        "up2_concat",
        "up1_concat",
    ]


def test_unet_widths_double_per_level() -> None:
    assert unet_widths(64) == (64, 128, 256, 512, 1024)
