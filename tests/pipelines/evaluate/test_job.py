"""``evaluate`` against a NumPy reference written out pixel by pixel in this file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES, UNKNOWN
from pipelines.evaluate import job as ev

URBAN = CLASS_NAMES.index("urban")


def _reference(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """The DeepGlobe metric, by counting pixels: no confusion matrix, no shared code."""
    truth = np.concatenate([t.ravel() for t, _ in pairs])
    pred = np.concatenate([p.ravel() for _, p in pairs])
    scored = truth != UNKNOWN
    iou, dice, present = {}, {}, []
    for c in ACTIVE_CLASSES:
        tp = np.sum((truth == c) & (pred == c))
        fp = np.sum((pred == c) & (truth != c) & scored)
        fn = np.sum((truth == c) & (pred != c))
        name = CLASS_NAMES[c]
        iou[name] = tp / (tp + fp + fn) if tp + fp + fn else None
        dice[name] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
        if iou[name] is not None:
            present.append(iou[name])
    accuracy = np.sum((truth == pred) & scored) / np.sum(scored)
    return {"iou": iou, "dice": dice, "miou": float(np.mean(present)), "accuracy": accuracy}


def test_metrics_match_the_pixel_count_reference(crafted: dict, tmp_path: Path):
    report = ev.evaluate(crafted["pred"], crafted["truth"], str(tmp_path / "report"))
    expected = _reference(crafted["pairs"])
    written = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert written == json.loads(json.dumps(report))

    active_names = [CLASS_NAMES[c] for c in ACTIVE_CLASSES]
    assert list(written["per_class_iou"]) == active_names  # palette order, unknown not scored
    assert list(written["per_class_dice"]) == active_names
    for name in active_names:
        want_iou, want_dice = expected["iou"][name], expected["dice"][name]
        got_iou, got_dice = written["per_class_iou"][name], written["per_class_dice"][name]
        assert (got_iou is None) == (want_iou is None), name
        if want_iou is not None:
            assert got_iou == pytest.approx(want_iou) and got_dice == pytest.approx(want_dice)
    assert written["per_class_iou"]["water"] == 0.0  # predicted, absent from truth: counts
    assert written["per_class_iou"]["barren"] is None  # absent from both: not in the mean
    assert written["miou"] == pytest.approx(expected["miou"])
    assert written["pixel_accuracy"] == pytest.approx(expected["accuracy"])

    cm = np.array(written["confusion_matrix"])
    truth = np.concatenate([t.ravel() for t, _ in crafted["pairs"]])
    pred = np.concatenate([p.ravel() for _, p in crafted["pairs"]])
    assert cm.shape == (7, 7) and cm.sum() == truth.size
    assert cm[UNKNOWN].sum() == np.sum(truth == UNKNOWN)
    assert cm[URBAN, UNKNOWN] == np.sum((truth == URBAN) & (pred == UNKNOWN))

    assert written["scenes"] == 2
    assert written["unmatched"] == {
        "predictions_without_truth": ["only-pred"],
        "truths_without_prediction": ["only-truth"],
    }
    assert written["failed"] == 1
    (error_file,) = (tmp_path / "report" / "errors").iterdir()
    record = json.loads(error_file.read_text())
    assert record["scene_id"] == "wrong-size" and "differs" in record["reason"]
    assert set(written["per_scene"]) == {"a", "b"}
    single = _reference(crafted["pairs"][:1])
    assert written["per_scene"]["a"]["miou"] == pytest.approx(single["miou"])
    assert (tmp_path / "report" / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
