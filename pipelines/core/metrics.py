"""The DeepGlobe challenge metric, in one place for training and ``landcover evaluate`` alike.

Everything derives from one confusion matrix ``cm`` (7x7 int64, rows = truth, columns =
prediction, palette order) accumulated over ALL pixels of ALL scenes (not averaged per image):

- pixels whose truth is ``unknown`` are ignored: row ``UNKNOWN`` is dropped;
- a prediction of ``unknown`` is wrong: it stays in its truth class's row as a false negative;
- ``IoU_c = TP_c / (TP_c + FP_c + FN_c)`` for the 6 active classes, with
  ``FN_c`` = the rest of row c (predicted ``unknown`` included) and
  ``FP_c`` = the rest of column c over the active truth rows;
- ``mIoU`` = mean of IoU_c over the active classes present in the truth or in the prediction
  (at scored pixels). A class absent from both is 0/0: it is excluded from the mean and its
  IoU is NaN (``None`` in JSON), since averaging in a 0 or a 1 would invent a score; a class
  predicted but absent from the truth has IoU 0 and counts. NaN when nothing at all is scored.
- ``Dice_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`` with the same conventions;
- ``pixel_accuracy`` = correct / scored pixels (truth not ``unknown``).

Pure NumPy on purpose: ``landcover evaluate`` imports this module without TensorFlow. The
streaming Keras metric (``DeepGlobeMeanIoU``, in ``models.keras_metrics``) accumulates the same
confusion matrix and derives its mIoU with these functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, NUM_CLASSES, UNKNOWN

_ACTIVE = np.asarray(ACTIVE_CLASSES)


def confusion_matrix(truth_ids: np.ndarray, pred_ids: np.ndarray) -> np.ndarray:
    """Counts ``cm[t, p]`` of pixels with truth class t and predicted class p, (7, 7) int64."""
    truth = np.asarray(truth_ids)
    pred = np.asarray(pred_ids)
    if truth.shape != pred.shape:
        raise ValueError(f"truth shape {truth.shape} differs from prediction shape {pred.shape}")
    for label, ids in (("truth", truth), ("prediction", pred)):
        if ids.size and (ids.min() < 0 or ids.max() >= NUM_CLASSES):
            raise ValueError(
                f"{label} class ids must be in 0..{NUM_CLASSES - 1}, "
                f"got {int(ids.min())}..{int(ids.max())}"
            )
    codes = truth.astype(np.int64).ravel() * NUM_CLASSES + pred.astype(np.int64).ravel()
    counts = np.bincount(codes, minlength=NUM_CLASSES * NUM_CLASSES)
    return counts.reshape(NUM_CLASSES, NUM_CLASSES).astype(np.int64)


def _checked(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.shape != (NUM_CLASSES, NUM_CLASSES):
        raise ValueError(f"confusion matrix must be {NUM_CLASSES}x{NUM_CLASSES}, got {cm.shape}")
    if (cm < 0).any():
        raise ValueError("confusion matrix counts must be >= 0")
    return cm.astype(np.float64)


def _tp_fp_fn(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TP, FP, FN of the active classes (each (6,)), truth-unknown pixels dropped."""
    scored = _checked(cm)[_ACTIVE]  # (6, 7): truth-unknown row gone, predicted-unknown kept
    tp = scored[np.arange(len(_ACTIVE)), _ACTIVE]
    fn = scored.sum(axis=1) - tp
    fp = scored[:, _ACTIVE].sum(axis=0) - tp
    return tp, fp, fn


def _per_class(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """(7,) palette-order ratios; NaN for unknown and for 0/0 (a class absent everywhere)."""
    values = np.full(NUM_CLASSES, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        values[_ACTIVE] = np.where(denominator > 0, numerator / denominator, np.nan)
    return values


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU, (7,) float64 in palette order; NaN for ``unknown`` and absent classes."""
    tp, fp, fn = _tp_fp_fn(cm)
    return _per_class(tp, tp + fp + fn)


def dice_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class Dice (F1), (7,) float64 in palette order; NaN as in ``iou_from_confusion``."""
    tp, fp, fn = _tp_fp_fn(cm)
    return _per_class(2 * tp, 2 * tp + fp + fn)


def miou_from_confusion(cm: np.ndarray) -> float:
    """The challenge score: mean IoU over the active classes present in truth or prediction."""
    present = iou_from_confusion(cm)[_ACTIVE]
    present = present[~np.isnan(present)]
    return float(present.mean()) if present.size else math.nan


def pixel_accuracy(cm: np.ndarray) -> float:
    """Correct / scored pixels, where scored = truth not ``unknown``; NaN if none."""
    scored = _checked(cm)[_ACTIVE]
    total = scored.sum()
    correct = scored[np.arange(len(_ACTIVE)), _ACTIVE].sum()
    return float(correct / total) if total > 0 else math.nan


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def metrics_report(cm: np.ndarray) -> dict[str, Any]:
    """The fields of ``metrics.json``, JSON-ready: NaN (undefined) becomes ``None``.

    ``per_class_iou`` / ``per_class_dice`` map the 6 active class names (palette order) to
    values; ``confusion_matrix`` is the full 7x7 (unknown row and column included) so readers
    can recompute everything.
    """
    iou = iou_from_confusion(cm)
    dice = dice_from_confusion(cm)
    return {
        "miou": _json_float(miou_from_confusion(cm)),
        "per_class_iou": {CLASS_NAMES[c]: _json_float(iou[c]) for c in ACTIVE_CLASSES},
        "per_class_dice": {CLASS_NAMES[c]: _json_float(dice[c]) for c in ACTIVE_CLASSES},
        "confusion_matrix": np.asarray(cm, dtype=np.int64).tolist(),
        "pixel_accuracy": _json_float(pixel_accuracy(cm)),
        "class_names": list(CLASS_NAMES),
        "ignored_class": CLASS_NAMES[UNKNOWN],
    }
