"""The distributed steps: the global-batch Dice equals the shared Dice loss, the eval step counts
the shared confusion matrix, the XLA step trains."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.losses import DiceLoss, dice_from_sums, dice_sums, segmentation_loss
from models.steps import (
    LossSpec,
    global_batch_loss,
    make_eval_step,
    make_train_step,
)
from pipelines.core import metrics
from pipelines.core.palette import NUM_CLASSES, UNKNOWN


def tiny_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            keras.layers.Conv2D(NUM_CLASSES, 3, padding="same"),
            keras.layers.Softmax(),
        ]
    )


def test_step_dice_equals_the_shared_dice_loss() -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(0, NUM_CLASSES, (2, 9, 7))
    ids[0, :3] = UNKNOWN
    y_true = tf.one_hot(ids, NUM_CLASSES)
    y_pred = tf.nn.softmax(tf.constant(rng.normal(size=(2, 9, 7, NUM_CLASSES)), tf.float32))
    for ignore in (False, True):
        for smooth in (1.0, 10.0):
            spec = LossSpec(smooth=smooth, ignore_unknown=ignore)
            expected = float(DiceLoss(smooth=smooth, ignore_unknown=ignore)(y_true, y_pred))
            assert float(global_batch_loss(y_true, y_pred, spec)) == pytest.approx(
                expected, rel=1e-6
            )
            # The validation path (host-side sums) agrees too.
            intersection, total = (
                t.numpy().astype(np.float64) for t in dice_sums(y_true, y_pred, ignore)
            )
            assert 1.0 - float(dice_from_sums(intersection, total, smooth=smooth)) == pytest.approx(
                expected, rel=1e-5
            )


@pytest.mark.parametrize("loss", ["dice+ce", "focal+dice"])
def test_step_compound_loss_equals_the_shared_loss(loss: str) -> None:
    rng = np.random.default_rng(2)
    ids = rng.integers(0, NUM_CLASSES, (2, 9, 7))
    ids[1, :2] = UNKNOWN
    y_true = tf.one_hot(ids, NUM_CLASSES)
    y_pred = tf.nn.softmax(tf.constant(rng.normal(size=(2, 9, 7, NUM_CLASSES)), tf.float32))
    weights = (0.5, 2.0, 1.0, 3.0, 0.25, 1.5, 1.0)
    for ignore in (False, True):
        spec = LossSpec(loss=loss, class_weights=weights, ignore_unknown=ignore, focal_gamma=1.5)
        expected = segmentation_loss(
            y_true,
            y_pred,
            loss=loss,
            class_weights=weights,
            ignore_unknown=ignore,
            focal_gamma=1.5,
        )
        assert float(global_batch_loss(y_true, y_pred, spec)) == pytest.approx(
            float(expected), rel=1e-6
        )


def test_eval_step_counts_the_shared_confusion_matrix() -> None:
    keras.utils.set_random_seed(1)
    model = tiny_model()
    rng = np.random.default_rng(1)
    images = rng.random((2, 9, 7, 3)).astype(np.float32)
    truth = rng.integers(0, NUM_CLASSES, (2, 9, 7))
    truth[0, :2] = UNKNOWN
    masks = tf.one_hot(truth, NUM_CLASSES)
    strategy = tf.distribute.get_strategy()
    spec = LossSpec(ignore_unknown=True)
    intersection, total, counts = make_eval_step(strategy, model, spec)((images, masks))
    probabilities = model(images, training=False)
    expected = metrics.confusion_matrix(truth, np.asarray(probabilities).argmax(-1))
    np.testing.assert_array_equal(counts.numpy().reshape(NUM_CLASSES, NUM_CLASSES), expected)
    want_i, want_s = dice_sums(masks, probabilities, True)
    np.testing.assert_allclose(intersection.numpy(), want_i.numpy(), rtol=1e-6)
    np.testing.assert_allclose(total.numpy(), want_s.numpy(), rtol=1e-6)


def test_xla_compiled_step_trains() -> None:
    keras.utils.set_random_seed(0)
    model = tiny_model()
    optimizer = keras.optimizers.Adam(0.05)
    optimizer.build(model.trainable_variables)
    strategy = tf.distribute.get_strategy()
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8, 3)).astype(np.float32)
    masks = tf.one_hot((images[..., 0] * NUM_CLASSES).astype(np.int32), NUM_CLASSES)
    iterator = iter(tf.data.Dataset.from_tensors((images, masks)).repeat())
    step = make_train_step(strategy, model, optimizer, LossSpec(), jit_compile=True)
    losses = [float(step(iterator)) for _ in range(10)]
    assert losses[-1] < losses[0]


def test_step_present_classes_dice_equals_the_shared_loss() -> None:
    rng = np.random.default_rng(4)
    ids = rng.integers(0, NUM_CLASSES, (2, 9, 7))
    ids[ids == 4] = 2  # water absent: left out of the mean
    ids[0, :2] = UNKNOWN
    y_true = tf.one_hot(ids, NUM_CLASSES)
    y_pred = tf.nn.softmax(tf.constant(rng.normal(size=(2, 9, 7, NUM_CLASSES)), tf.float32))
    for ignore in (False, True):
        spec = LossSpec(ignore_unknown=ignore, dice_classes="present")
        expected = float(DiceLoss(ignore_unknown=ignore, dice_classes="present")(y_true, y_pred))
        assert expected != pytest.approx(float(DiceLoss(ignore_unknown=ignore)(y_true, y_pred)))
        assert float(global_batch_loss(y_true, y_pred, spec)) == pytest.approx(expected, rel=1e-6)
