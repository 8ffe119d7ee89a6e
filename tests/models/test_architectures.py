"""Both architectures: shapes at any size, save/load, choice by name, encoder weights, freezing."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from models.architectures import (
    ARCHITECTURES,
    ENCODER_NAME,
    CropLike,
    PadToMultiple,
    build_model,
    get_encoder,
    set_encoder_trainable,
)
from pipelines.core.palette import NUM_CLASSES

# 612 is DeepGlobe's patch size and not a multiple of 32; 97x75 is odd in both directions.
SIZES = [(612, 612), (640, 640), (97, 75)]


@pytest.fixture(scope="module")
def tiny_unet() -> keras.Model:
    return build_model("unet", base_filters=4)


@pytest.fixture(scope="module")
def tiny_resnet50_unet() -> keras.Model:
    # The encoder is full-size ResNet50 whatever base_filters says; only the decoder shrinks.
    return build_model("resnet50_unet", base_filters=4)


@pytest.fixture(scope="module")
def resnet50_weights_reference() -> keras.Model:
    """A randomly initialised ResNet50 as Keras applications builds it, to write weight files."""
    keras.utils.set_random_seed(7)
    return keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))


def _images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def _assert_probabilities(y, batch: int, height: int, width: int) -> None:
    y = np.asarray(y)
    assert y.shape == (batch, height, width, NUM_CLASSES)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_unet_output_matches_input_size(tiny_unet, height, width):
    _assert_probabilities(
        tiny_unet(_images(height, width, batch=2), training=False), 2, height, width
    )


@pytest.mark.parametrize(("height", "width"), [*SIZES, (64, 64)])
def test_resnet50_unet_output_matches_input_size(tiny_resnet50_unet, height, width):
    y = tiny_resnet50_unet(_images(height, width), training=False)
    _assert_probabilities(y, 1, height, width)


def test_pad_to_multiple_reflects_evenly_and_crop_like_undoes_it():
    x = _images(97, 75, batch=2)
    padded = np.asarray(PadToMultiple(32, mode="reflect")(x))
    # 97 → 128 (15 above, 16 below), 75 → 96 (10 left, 11 right), mirrored without the edge.
    expected = np.pad(x, [(0, 0), (15, 16), (10, 11), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(padded, expected)
    np.testing.assert_array_equal(np.asarray(CropLike()([padded, x])), x)


def test_pad_to_multiple_leaves_multiples_alone():
    x = _images(64, 96)
    np.testing.assert_array_equal(np.asarray(PadToMultiple(32)(x)), x)


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


def test_resnet50_unet_taps_the_stem_and_stages_2_to_5(tiny_resnet50_unet):
    encoder = get_encoder(tiny_resnet50_unet)
    assert encoder.name == ENCODER_NAME
    assert [tuple(out.shape[1:]) for out in encoder.outputs] == [
        (None, None, 64),  # conv1_relu, /2
        (None, None, 256),  # conv2_block3_out, /4
        (None, None, 512),  # conv3_block4_out, /8
        (None, None, 1024),  # conv4_block6_out, /16
        (None, None, 2048),  # conv5_block3_out, /32 (bridge)
    ]
    features = encoder(_images(64, 96), training=False)
    assert [tuple(f.shape[1:3]) for f in features] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]


def test_unet_save_load_gives_identical_predictions(tiny_unet, save_load_roundtrip):
    save_load_roundtrip(tiny_unet, _images(97, 75, batch=2))


def test_resnet50_unet_save_load_keeps_predictions_and_frozen_encoder(save_load_roundtrip):
    model = build_model("resnet50_unet", base_filters=4)
    set_encoder_trainable(model, False)
    reloaded = save_load_roundtrip(model, _images(97, 75))
    assert get_encoder(reloaded).trainable is False
    assert len(reloaded.trainable_weights) == len(model.trainable_weights)


def test_freezing_the_encoder_leaves_only_the_decoder_trainable():
    model = build_model("resnet50_unet", base_filters=4)
    encoder_ids = {id(v) for v in get_encoder(model).weights}
    all_trainable = len(model.trainable_weights)
    set_encoder_trainable(model, False)
    assert model.trainable_weights
    assert not any(id(v) in encoder_ids for v in model.trainable_weights)
    set_encoder_trainable(model, True)
    assert len(model.trainable_weights) == all_trainable


def test_unet_has_no_encoder_to_freeze(tiny_unet):
    assert get_encoder(tiny_unet) is None
    with pytest.raises(ValueError, match="no 'resnet50_encoder'"):
        set_encoder_trainable(tiny_unet, False)


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown architecture 'deeplab'") as raised:
        build_model("deeplab")
    for name in ARCHITECTURES:
        assert name in str(raised.value)
    assert set(ARCHITECTURES) == {"unet", "resnet50_unet"}


def test_unet_refuses_encoder_weights():
    with pytest.raises(ValueError, match="unet has no pretrained encoder"):
        build_model("unet", base_filters=4, encoder_weights="imagenet")


def _write_legacy_h5(model: keras.Model, path) -> None:
    """Write weights in the Keras 2 ``.h5`` layout, the format of Keras's ImageNet files."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.mark.parametrize("file_name", ["encoder.weights.h5", "encoder_notop.h5"])
def test_encoder_weights_load_from_a_local_path(
    resnet50_weights_reference, tiny_resnet50_unet, tmp_path, file_name
):
    path = tmp_path / file_name
    if file_name.endswith(".weights.h5"):
        resnet50_weights_reference.save_weights(path)
    else:
        _write_legacy_h5(resnet50_weights_reference, path)
    model = build_model("resnet50_unet", base_filters=4, encoder_weights=str(path))
    loaded = get_encoder(model).get_weights()
    reference = resnet50_weights_reference.get_weights()
    assert len(loaded) == len(reference) == 318
    for got, want in zip(loaded, reference, strict=True):
        np.testing.assert_array_equal(got, want)
    # and they are not what a fresh random init would give
    fresh = get_encoder(tiny_resnet50_unet).get_weights()
    assert not np.array_equal(fresh[0], reference[0])


def test_missing_encoder_weights_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.weights\.h5"):
        build_model("resnet50_unet", base_filters=4, encoder_weights=str(missing))


def test_imagenet_without_internet_says_so(monkeypatch):
    from keras.src.utils import file_utils  # what keras.applications downloads with

    def offline(fname, origin=None, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(RuntimeError) as raised:
        build_model("resnet50_unet", base_filters=4, encoder_weights="imagenet")
    message = str(raised.value)
    assert "needs the internet" in message
    assert "local PATH" in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "URL fetch failure" in message


def test_mixed_precision_keeps_float32_probabilities():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("unet", base_filters=4)
        assert model.get_layer("logits").compute_dtype == "float16"
        _assert_probabilities(model(_images(40, 33), training=False), 1, 40, 33)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_compiled_model_trains_and_reloads_with_its_loss_and_metrics(tmp_path):
    from models.architectures import load_model
    from models.keras_metrics import DeepGlobeMeanIoU
    from models.losses import DiceLoss, dice_coefficient

    keras.utils.set_random_seed(0)
    model = build_model("unet", base_filters=4)
    model.compile(
        optimizer="adam",
        loss=DiceLoss(smooth=0.5, ignore_unknown=True),
        metrics=[DeepGlobeMeanIoU(), dice_coefficient],
        run_eagerly=True,  # tracing the train step would triple this test's time
    )
    x = _images(36, 44, batch=2)
    y = keras.utils.to_categorical(np.random.default_rng(0).integers(0, 7, (2, 36, 44)), 7)
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert set(history.history) >= {"loss", "miou", "dice_coefficient"}
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "model.keras")
    reloaded = load_model(str(tmp_path / "model.keras"), compile=True)
    assert isinstance(reloaded.loss, DiceLoss)
    assert (reloaded.loss.smooth, reloaded.loss.ignore_unknown) == (0.5, True)
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.asarray(model(x)))
