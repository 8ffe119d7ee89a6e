"""Architectures by name: dispatch through the registry, save/load, freezing the encoder,
mixed precision, and a compiled model that reloads with its loss and metrics."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from models.architectures import (
    ARCHITECTURES,
    ENCODER_NAME,
    build_model,
    get_encoder,
    set_encoder_trainable,
)
from models.registry import ENCODER_ARCHITECTURES
from pipelines.core.palette import NUM_CLASSES


@pytest.fixture(scope="module")
def tiny_unet() -> keras.Model:
    return build_model("unet", base_filters=4)


def images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def assert_probabilities(y, batch: int, height: int, width: int) -> None:
    y = np.asarray(y)
    assert y.shape == (batch, height, width, NUM_CLASSES)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


def test_unet_save_load_gives_identical_predictions(tiny_unet, save_load_roundtrip):
    save_load_roundtrip(tiny_unet, images(97, 75, batch=2))


def test_resnet50_unet_save_load_keeps_predictions_and_frozen_encoder(save_load_roundtrip):
    model = build_model("resnet50_unet", base_filters=4)
    set_encoder_trainable(model, False)
    reloaded = save_load_roundtrip(model, images(97, 75))
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
    with pytest.raises(ValueError, match=r"no 'resnet50_encoder'.*resnet50_unet, deeplabv3plus"):
        set_encoder_trainable(tiny_unet, False)


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown architecture 'deeplab'") as raised:
        build_model("deeplab")
    for name in ARCHITECTURES:
        assert name in str(raised.value)
    assert set(ARCHITECTURES) == {"unet", "resnet50_unet", "deeplabv3plus"}


def test_unet_refuses_encoder_weights():
    with pytest.raises(ValueError, match="unet has no pretrained encoder"):
        build_model("unet", base_filters=4, encoder_weights="imagenet")


def test_mixed_precision_keeps_float32_probabilities():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_model("unet", base_filters=4)
        assert model.get_layer("logits").compute_dtype == "float16"
        assert_probabilities(model(images(40, 33), training=False), 1, 40, 33)
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
    x = images(36, 44, batch=2)
    y = keras.utils.to_categorical(np.random.default_rng(0).integers(0, 7, (2, 36, 44)), 7)
    history = model.fit(x, y, epochs=2, batch_size=2, verbose=0)
    assert set(history.history) >= {"loss", "miou", "dice_coefficient"}
    assert np.isfinite(history.history["loss"]).all()
    model.save(tmp_path / "model.keras")
    reloaded = load_model(str(tmp_path / "model.keras"), compile=True)
    assert isinstance(reloaded.loss, DiceLoss)
    assert (reloaded.loss.smooth, reloaded.loss.ignore_unknown) == (0.5, True)
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.asarray(model(x)))


def test_build_model_dispatches_through_the_registry() -> None:
    for name in ARCHITECTURES:
        model = build_model(name, base_filters=2)
        assert model.name == name
        assert (get_encoder(model) is not None) == (name in ENCODER_ARCHITECTURES)
        if name in ENCODER_ARCHITECTURES:
            assert get_encoder(model).name == ENCODER_NAME
    with pytest.raises(ValueError, match="base_filters must be >= 1"):
        build_model("unet", base_filters=0)
