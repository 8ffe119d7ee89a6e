"""The TF confusion counts and the streaming Keras metric against the NumPy definitions of
``pipelines.core.metrics``."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.keras_metrics import CONFUSION_CELLS, DeepGlobeMeanIoU, confusion_counts
from pipelines.core.metrics import confusion_matrix, miou_from_confusion
from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES, UNKNOWN, one_hot

URBAN, AGRICULTURE, RANGELAND, FOREST, WATER, BARREN = ACTIVE_CLASSES


def test_confusion_counts_equal_the_numpy_matrix_with_unknown_and_a_mask():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, NUM_CLASSES, (3, 11, 9))
    truth[0, :4] = UNKNOWN  # unknown-truth pixels are counted, in the UNKNOWN row
    probs = rng.random((3, 11, 9, NUM_CLASSES)).astype("float32")
    mask = (rng.random((3, 11, 9)) < 0.7).astype("float32")
    y_true = tf.one_hot(truth, NUM_CLASSES)
    keep = mask > 0
    expected = confusion_matrix(truth[keep], probs.argmax(-1)[keep])
    assert expected[UNKNOWN].sum() > 0 and (~keep).any()
    for dtype in ("int64", "float32"):
        counts = confusion_counts(y_true, tf.constant(probs), mask, dtype=dtype)
        assert counts.shape == (CONFUSION_CELLS,) and counts.dtype == dtype
        np.testing.assert_array_equal(
            np.asarray(counts).reshape(NUM_CLASSES, NUM_CLASSES), expected
        )
    unmasked = confusion_counts(y_true, tf.constant(probs), dtype="float32")
    np.testing.assert_array_equal(
        np.asarray(unmasked).reshape(NUM_CLASSES, NUM_CLASSES),
        confusion_matrix(truth, probs.argmax(-1)),
    )


def test_confusion_counts_have_a_static_shape_in_a_graph():
    traced = tf.function(lambda t, p: confusion_counts(t, p, dtype="float32"))
    spec = tf.TensorSpec((None, None, None, NUM_CLASSES), tf.float32)
    graph = traced.get_concrete_function(spec, spec)
    assert graph.structured_outputs.shape == (CONFUSION_CELLS,)


def _random_batch(rng: np.random.Generator, shape=(2, 12, 10)) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.integers(0, NUM_CLASSES, size=shape)
    probs = rng.random((*shape, NUM_CLASSES)).astype("float32")
    probs[..., truth.max() % 6] += 0.3 * (rng.random(shape) < 0.5)  # some structure
    return truth, probs


def test_keras_metric_streams_to_the_numpy_result():
    rng = np.random.default_rng(11)
    metric = DeepGlobeMeanIoU()
    total = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for _ in range(3):
        truth, probs = _random_batch(rng)
        metric.update_state(one_hot(truth).astype("float32"), probs)
        total += confusion_matrix(truth, probs.argmax(-1))
    np.testing.assert_array_equal(metric.confusion(), total)
    assert float(metric.result()) == pytest.approx(miou_from_confusion(total), rel=1e-6)
    metric.reset_state()
    assert metric.confusion().sum() == 0
    assert math.isnan(float(metric.result()))


def test_keras_metric_updates_inside_a_tf_function():
    import tensorflow as tf

    rng = np.random.default_rng(12)
    truth, probs = _random_batch(rng)
    metric = DeepGlobeMeanIoU()
    tf.function(metric.update_state)(tf.one_hot(truth, NUM_CLASSES), tf.constant(probs))
    np.testing.assert_array_equal(metric.confusion(), confusion_matrix(truth, probs.argmax(-1)))


def test_keras_metric_ignores_unknown_and_masked_pixels_like_numpy():
    truth = np.array([[URBAN, URBAN, UNKNOWN, WATER]])
    pred = np.array([[URBAN, UNKNOWN, FOREST, BARREN]])
    mask = np.array([[1, 1, 1, 0]], "float32")  # the last pixel is padding
    metric = DeepGlobeMeanIoU()
    metric.update_state(one_hot(truth).astype("float32"), one_hot(pred).astype("float32"), mask)
    expected = confusion_matrix(truth[:, :3], pred[:, :3])
    np.testing.assert_array_equal(metric.confusion(), expected)
    assert float(metric.result()) == pytest.approx(miou_from_confusion(expected)) == 0.5


def test_keras_metric_serializes():
    metric = DeepGlobeMeanIoU(name="val_miou")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, DeepGlobeMeanIoU) and restored.name == "val_miou"
