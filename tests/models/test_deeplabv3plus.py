"""DeepLabv3+: output size for any input size, output stride 16 with the ResNet50 weights'
layer names, save/reload, encoder freezing, and its parameter count."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models.architectures import build_model, get_encoder, set_encoder_trainable
from models.deeplabv3plus import ASPP_RATES, build_deeplabv3plus, deeplab_widths
from models.encoders import ENCODER_NAME
from pipelines.core.palette import NUM_CLASSES

# 612 is DeepGlobe's patch size (not a multiple of 16); 100x77 is odd in one direction.
SIZES = [(612, 612), (100, 77), (64, 64)]


@pytest.fixture(scope="module")
def tiny_deeplab() -> keras.Model:
    # The encoder is full-size ResNet50 whatever base_filters says; only the head shrinks.
    keras.utils.set_random_seed(5)
    return build_deeplabv3plus(base_filters=4)


def images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (batch, height, width, 3)).astype("float32")


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_output_matches_input_size(tiny_deeplab, height, width) -> None:
    y = np.asarray(tiny_deeplab(images(height, width), training=False))
    assert y.shape == (1, height, width, NUM_CLASSES)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


def test_encoder_runs_at_output_stride_16_with_keras_layer_names(tiny_deeplab) -> None:
    encoder = get_encoder(tiny_deeplab)
    assert encoder.name == ENCODER_NAME
    low, high = encoder(images(64, 96), training=False)
    assert tuple(low.shape[1:]) == (16, 24, 256)  # conv2_block3_out, stride 4
    assert tuple(high.shape[1:]) == (4, 6, 2048)  # conv5_block3_out, stride 16 (dilated)
    assert encoder.get_layer("conv5_block1_1_conv").strides == (1, 1)
    assert encoder.get_layer("conv5_block2_2_conv").dilation_rate == (2, 2)
    assert encoder.get_layer("conv4_block1_1_conv").strides == (2, 2)
    for rate in ASPP_RATES:
        assert tiny_deeplab.get_layer(f"aspp_rate{rate}").dilation_rate == (rate, rate)


def test_save_reload_keeps_predictions_and_frozen_encoder(tiny_deeplab, save_load_roundtrip):
    set_encoder_trainable(tiny_deeplab, False)
    try:
        reloaded = save_load_roundtrip(tiny_deeplab, images(100, 77))
        assert get_encoder(reloaded).trainable is False
        assert len(reloaded.trainable_weights) == len(tiny_deeplab.trainable_weights)
    finally:
        set_encoder_trainable(tiny_deeplab, True)


def test_freezing_the_encoder_leaves_only_the_head_trainable(tiny_deeplab) -> None:
    encoder_ids = {id(v) for v in get_encoder(tiny_deeplab).weights}
    all_trainable = len(tiny_deeplab.trainable_weights)
    set_encoder_trainable(tiny_deeplab, False)
    try:
        assert tiny_deeplab.trainable_weights
        assert not any(id(v) in encoder_ids for v in tiny_deeplab.trainable_weights)
    finally:
        set_encoder_trainable(tiny_deeplab, True)
    assert len(tiny_deeplab.trainable_weights) == all_trainable


def test_default_widths_and_parameter_count() -> None:
    assert deeplab_widths(64) == (256, 48)
    assert deeplab_widths(2) == (8, 1)
    model = build_model("deeplabv3plus")
    params = model.count_params()
    encoder_params = get_encoder(model).count_params()
    # ResNet50 without its top has 23,587,712 parameters; the head adds ASPP and the decoder.
    assert encoder_params == 23_587_712, f"encoder parameters: {encoder_params:,}"
    assert 39_000_000 < params < 42_000_000, f"deeplabv3plus parameters at base 64: {params:,}"
