"""The DeepGlobe metric (``pipelines.core.metrics``, pure NumPy) against a set-based reference
written out here."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from pipelines.core.metrics import (
    confusion_matrix,
    dice_from_confusion,
    iou_from_confusion,
    metrics_report,
    miou_from_confusion,
    pixel_accuracy,
)
from pipelines.core.palette import ACTIVE_CLASSES, NUM_CLASSES, UNKNOWN

URBAN, AGRICULTURE, RANGELAND, FOREST, WATER, BARREN = ACTIVE_CLASSES


def reference_scores(truth: np.ndarray, pred: np.ndarray) -> dict[int, tuple[float, float]]:
    """Per active class present somewhere: (IoU, Dice) from pixel sets, truth-unknown ignored."""
    scored = truth != UNKNOWN
    scores = {}
    for c in ACTIVE_CLASSES:
        in_truth = (truth == c) & scored
        in_pred = (pred == c) & scored
        union = (in_truth | in_pred).sum()
        if union:
            both = (in_truth & in_pred).sum()
            scores[c] = (both / union, 2 * both / (in_truth.sum() + in_pred.sum()))
    return scores


def check_against_reference(truth: np.ndarray, pred: np.ndarray) -> None:
    cm = confusion_matrix(truth, pred)
    expected = reference_scores(truth, pred)
    iou, dice = iou_from_confusion(cm), dice_from_confusion(cm)
    for c in range(NUM_CLASSES):
        if c in expected:
            assert iou[c] == pytest.approx(expected[c][0])
            assert dice[c] == pytest.approx(expected[c][1])
        else:
            assert math.isnan(iou[c]) and math.isnan(dice[c])
    assert miou_from_confusion(cm) == pytest.approx(np.mean([v[0] for v in expected.values()]))
    scored = truth != UNKNOWN
    assert pixel_accuracy(cm) == pytest.approx((truth == pred)[scored].mean())


def test_confusion_matrix_counts_truth_rows_prediction_columns():
    truth = np.array([[0, 0, 1], [6, 2, 2]], np.uint8)
    pred = np.array([[0, 1, 1], [0, 2, 6]], np.uint8)
    cm = confusion_matrix(truth, pred)
    expected = np.zeros((7, 7), np.int64)
    for t, p in zip(truth.ravel(), pred.ravel(), strict=True):
        expected[t, p] += 1
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    assert cm[0, 1] == 1 and cm[UNKNOWN, 0] == 1 and cm[2, UNKNOWN] == 1


def test_perfect_prediction_scores_one():
    truth = np.random.default_rng(0).integers(0, NUM_CLASSES, size=(2, 20, 20))
    cm = confusion_matrix(truth, truth)
    assert miou_from_confusion(cm) == 1.0
    assert pixel_accuracy(cm) == 1.0
    np.testing.assert_array_equal(iou_from_confusion(cm)[list(ACTIVE_CLASSES)], 1.0)
    assert math.isnan(iou_from_confusion(cm)[UNKNOWN])


def test_disjoint_prediction_scores_zero():
    truth = np.random.default_rng(1).integers(0, 6, size=(30, 30))
    cm = confusion_matrix(truth, (truth + 1) % 6)
    assert miou_from_confusion(cm) == 0.0
    assert pixel_accuracy(cm) == 0.0
    np.testing.assert_array_equal(dice_from_confusion(cm)[list(ACTIVE_CLASSES)], 0.0)


def test_truth_unknown_pixels_are_ignored_whatever_is_predicted():
    truth = np.array([URBAN, URBAN, UNKNOWN, UNKNOWN])
    for pred in ([URBAN, URBAN, URBAN, FOREST], [URBAN, URBAN, WATER, UNKNOWN]):
        cm = confusion_matrix(truth, np.array(pred))
        assert miou_from_confusion(cm) == 1.0  # forest/water "predicted" only where unscored
        assert pixel_accuracy(cm) == 1.0
        assert math.isnan(iou_from_confusion(cm)[FOREST])


def test_predicting_unknown_counts_as_wrong():
    cm = confusion_matrix(np.array([URBAN] * 4), np.array([URBAN, URBAN, UNKNOWN, UNKNOWN]))
    assert iou_from_confusion(cm)[URBAN] == 0.5  # 2 TP / (2 TP + 2 FN)
    assert dice_from_confusion(cm)[URBAN] == pytest.approx(2 * 2 / (2 * 2 + 2))
    assert miou_from_confusion(cm) == 0.5
    assert pixel_accuracy(cm) == 0.5


def test_class_absent_from_truth_counts_only_when_predicted():
    truth = np.array([URBAN, URBAN, WATER, WATER])
    cm = confusion_matrix(truth, np.array([URBAN, BARREN, WATER, WATER]))
    iou = iou_from_confusion(cm)
    assert iou[BARREN] == 0.0  # predicted, never true: IoU 0 and in the mean
    assert math.isnan(iou[FOREST])  # neither: excluded
    assert miou_from_confusion(cm) == pytest.approx((1 / 2 + 1 + 0) / 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_set_based_reference_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, NUM_CLASSES, size=(3, 17, 23))
    pred = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, NUM_CLASSES, truth.shape))
    check_against_reference(truth, pred)


def test_nothing_scored_is_nan():
    cm = confusion_matrix(np.full(5, UNKNOWN), np.zeros(5, int))
    assert math.isnan(miou_from_confusion(cm)) and math.isnan(pixel_accuracy(cm))
    assert metrics_report(cm)["miou"] is None


def test_report_is_strict_json_in_palette_order():
    truth = np.array([URBAN, AGRICULTURE, UNKNOWN, WATER])
    pred = np.array([URBAN, URBAN, URBAN, WATER])
    report = json.loads(json.dumps(metrics_report(confusion_matrix(truth, pred)), allow_nan=False))
    assert list(report["per_class_iou"]) == [
        "urban",
        "agriculture",
        "rangeland",
        "forest",
        "water",
        "barren",
    ]
    assert report["per_class_iou"]["urban"] == 0.5
    assert report["per_class_iou"]["forest"] is None
    assert report["per_class_dice"]["urban"] == pytest.approx(2 / 3)
    assert report["miou"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert report["pixel_accuracy"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"][UNKNOWN][URBAN] == 1


@pytest.mark.parametrize(
    ("truth", "pred", "message"),
    [
        (np.zeros(3, int), np.zeros(4, int), "differs"),
        (np.array([0, 7]), np.array([0, 0]), "truth class ids"),
        (np.array([0, 0]), np.array([-1, 0]), "prediction class ids"),
    ],
)
def test_rejects_bad_ids(truth, pred, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(truth, pred)


def test_numpy_metrics_do_not_import_tensorflow():
    code = "import sys, pipelines.core.metrics; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
