"""Batch-norm statistics: found in nested models, recomputed for the current weights (precise
BN) as the mean of per-batch statistics, frozen layers left alone, momentum put back."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from models.batchnorm import batchnorm_statistics, make_recalibration, trainable_batchnorms

CHANNELS = 3


def bn_model() -> keras.Model:
    """Input → BN(a) → conv → BN(b): BN(a) sees the raw input, so its statistics are known."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, CHANNELS))
    x = keras.layers.BatchNormalization(name="a")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = keras.layers.BatchNormalization(name="b")(x)
    return keras.Model(inputs, x)


def batches(count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal(loc=3.0 + k, scale=2.0, size=(4, 8, 8, CHANNELS)).astype(np.float32),
            np.zeros((4, 8, 8, 7), np.float32),
        )
        for k in range(count)
    ]


def test_batchnorm_statistics_are_found_in_nested_models() -> None:
    from models.architectures import build_model

    model = build_model("unet", base_filters=2)
    names = {v.path.rsplit("/", 1)[-1] for v in batchnorm_statistics(model)}
    assert names == {"moving_mean", "moving_variance"}
    batchnorms = [
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(batchnorm_statistics(model)) == 2 * len(batchnorms)
    assert len(trainable_batchnorms(model)) == len(batchnorms)


def test_recalibration_is_the_mean_of_the_batches_statistics() -> None:
    model = bn_model()
    data = batches(3)
    recalibrate = make_recalibration(tf.distribute.get_strategy(), model)
    assert recalibrate(iter(data), 3) == 3
    layer = model.get_layer("a")
    want_mean = np.mean([images.mean(axis=(0, 1, 2)) for images, _ in data], axis=0)
    want_var = np.mean([images.var(axis=(0, 1, 2)) for images, _ in data], axis=0)
    np.testing.assert_allclose(layer.moving_mean.numpy(), want_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), want_var, rtol=1e-4)
    # the moving averages (momentum 0.99 from 0 and 1) would be nowhere near
    assert np.all(layer.moving_mean.numpy() > 3.5)
    assert [bn.momentum for bn in trainable_batchnorms(model)] == [0.99, 0.99]


def test_recalibration_depends_on_the_weights_and_batches_only() -> None:
    """The statistics before do not matter: a resumed run recomputes the same ones."""
    first, second = bn_model(), bn_model()
    second.get_layer("b").moving_mean.assign(np.full(4, 50.0, np.float32))
    for model in (first, second):
        make_recalibration(tf.distribute.get_strategy(), model)(iter(batches(2)), 2)
    for name in ("a", "b"):
        np.testing.assert_allclose(
            first.get_layer(name).moving_mean.numpy(),
            second.get_layer(name).moving_mean.numpy(),
            rtol=1e-6,
        )


def test_inference_then_matches_training_mode_on_the_same_batch() -> None:
    """The failure it fixes: stale statistics make inference differ from what training saw."""
    model = bn_model()
    images, _ = batches(1)[0]
    trained = np.asarray(model(images, training=True))
    stale = np.asarray(model(images, training=False))
    assert np.abs(stale - trained).max() > 0.5
    make_recalibration(tf.distribute.get_strategy(), model)(iter([(images, None)]), 1)
    np.testing.assert_allclose(np.asarray(model(images, training=False)), trained, atol=1e-2)


def test_frozen_layers_keep_their_statistics_and_zero_batches_change_nothing() -> None:
    model = bn_model()
    model.get_layer("a").trainable = False
    before_a = model.get_layer("a").moving_mean.numpy().copy()
    before_b = model.get_layer("b").moving_mean.numpy().copy()
    recalibrate = make_recalibration(tf.distribute.get_strategy(), model)
    assert recalibrate(iter(batches(2)), 0) == 0
    np.testing.assert_array_equal(model.get_layer("b").moving_mean.numpy(), before_b)
    assert recalibrate(iter(batches(2)), 2) == 2
    np.testing.assert_array_equal(model.get_layer("a").moving_mean.numpy(), before_a)
    assert not np.allclose(model.get_layer("b").moving_mean.numpy(), before_b)


def test_a_short_iterator_uses_what_it_has() -> None:
    model = bn_model()
    data = batches(2)
    assert make_recalibration(tf.distribute.get_strategy(), model)(iter(data), 5) == 2
    want = np.mean([images.mean(axis=(0, 1, 2)) for images, _ in data], axis=0)
    np.testing.assert_allclose(model.get_layer("a").moving_mean.numpy(), want, rtol=1e-5)
