"""The DeepGlobe confusion counts in TensorFlow, and ``DeepGlobeMeanIoU``, the streaming metric.

:func:`confusion_counts` is the one TF definition of the confusion matrix: the same cells as
``pipelines.core.metrics.confusion_matrix`` (rows = truth, columns = prediction, palette order;
truth and prediction are the argmax of the one-hot truth and of the probabilities, so
truth-``unknown`` pixels land in row ``UNKNOWN`` exactly as in NumPy). Both the Keras metric's
``update_state`` and the distributed evaluation step (``models.steps.make_eval_step``) count
with it, so validation during training and ``landcover evaluate`` cannot disagree on a pixel.
The scores (IoU, Dice, mIoU) are derived from the matrix by ``pipelines.core.metrics``; the
metric's ``result()`` repeats the mIoU rule in tensor ops only because Keras needs it in graph.

Lives apart from ``pipelines.core.metrics`` so that module stays free of TensorFlow.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from models.registry import KERAS_PACKAGE
from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES

CONFUSION_CELLS = NUM_CLASSES * NUM_CLASSES


def confusion_counts(y_true: Any, y_pred: Any, sample_weight: Any = None, dtype: str = "int64"):
    """(49,) counts of ``truth × 7 + prediction``: ``pipelines.core.metrics``'s matrix, flat.

    ``y_true`` one-hot and ``y_pred`` probabilities ``(…, H, W, 7)``; ``sample_weight``
    (optional, ``(…, H, W)``) is a mask: pixels with weight 0 are not counted. Counted exactly
    in integers, then cast to ``dtype``: int64 to accumulate, float32 where a strategy must
    all-reduce it (exact up to 2**24 per cell, e.g. 44 whole 612² patches of one class).
    The shape is static, so it works inside ``strategy.run`` on every strategy.
    """
    truth = ops.reshape(ops.argmax(y_true, axis=-1), (-1,))
    pred = ops.reshape(ops.argmax(y_pred, axis=-1), (-1,))
    codes = ops.cast(truth, "int32") * NUM_CLASSES + ops.cast(pred, "int32")
    if sample_weight is not None:
        keep = ops.reshape(ops.cast(sample_weight, "float32") > 0, (-1,))
        codes = ops.where(keep, codes, CONFUSION_CELLS)  # an extra bin, dropped below
    counts = ops.bincount(codes, minlength=CONFUSION_CELLS + 1)[:CONFUSION_CELLS]
    return ops.cast(ops.reshape(counts, (CONFUSION_CELLS,)), dtype)


@keras.saving.register_keras_serializable(package=KERAS_PACKAGE)
class DeepGlobeMeanIoU(keras.metrics.Metric):
    """Streaming DeepGlobe mIoU from one-hot truth ``(B, H, W, 7)`` and probabilities.

    Counts are int64: float32 counts stop being exact past 2**24 pixels per cell (45 patches of
    612x612), which an epoch passes at once. ``sample_weight`` (optional, ``(B, H, W)``) is a
    mask: pixels with weight 0 are not counted. ``result()`` is NaN until a class is scored,
    like ``pipelines.core.metrics.miou_from_confusion``.
    """

    def __init__(self, name: str = "miou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total_cm = self.add_variable(
            shape=(NUM_CLASSES, NUM_CLASSES), initializer="zeros", dtype="int64", name="total_cm"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        counts = confusion_counts(y_true, y_pred, sample_weight, dtype="int64")
        self.total_cm.assign_add(ops.reshape(counts, (NUM_CLASSES, NUM_CLASSES)))

    def result(self):
        cm = ops.cast(self.total_cm, "float64")
        active = list(ACTIVE_CLASSES)
        scored = ops.take(cm, active, axis=0)  # (6, 7): truth-unknown row dropped
        tp = ops.take(ops.diagonal(cm), active)
        fn = ops.sum(scored, axis=1) - tp
        fp = ops.sum(ops.take(scored, active, axis=1), axis=0) - tp
        denominator = tp + fp + fn
        present = ops.cast(denominator > 0, "float64")
        iou = tp / ops.maximum(denominator, 1.0)
        n_present = ops.sum(present)
        miou = ops.where(
            n_present > 0, ops.sum(iou * present) / ops.maximum(n_present, 1.0), float("nan")
        )
        return ops.cast(miou, "float32")

    def reset_state(self):
        self.total_cm.assign(ops.zeros((NUM_CLASSES, NUM_CLASSES), dtype="int64"))

    def confusion(self) -> np.ndarray:
        """The accumulated confusion matrix, NumPy (7, 7) int64, for ``pipelines.core.metrics``."""
        return np.asarray(ops.convert_to_numpy(self.total_cm), dtype=np.int64)
