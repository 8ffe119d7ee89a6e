"""``DeepGlobeMeanIoU``: the challenge mIoU as a streaming Keras metric for training.

It accumulates the same 7x7 confusion matrix as ``pipelines.core.metrics.confusion_matrix``
(rows = truth, columns = prediction, from the argmax of the one-hot truth and of the
probabilities) and computes the score with the same rules; ``confusion()`` hands the matrix to
the NumPy functions for per-class IoU and Dice. Lives apart from ``pipelines.core.metrics`` so
that module stays free of TensorFlow.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES

PACKAGE = "landcover"
_CELLS = NUM_CLASSES * NUM_CLASSES


@keras.saving.register_keras_serializable(package=PACKAGE)
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
        truth = ops.reshape(ops.argmax(y_true, axis=-1), (-1,))
        pred = ops.reshape(ops.argmax(y_pred, axis=-1), (-1,))
        codes = ops.cast(truth, "int32") * NUM_CLASSES + ops.cast(pred, "int32")
        if sample_weight is not None:
            keep = ops.reshape(ops.cast(sample_weight, "float32") > 0, (-1,))
            codes = ops.where(keep, codes, _CELLS)  # an extra bin, dropped below
        counts = ops.bincount(codes, minlength=_CELLS + 1)[:_CELLS]
        self.total_cm.assign_add(ops.reshape(ops.cast(counts, "int64"), (NUM_CLASSES,) * 2))

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
