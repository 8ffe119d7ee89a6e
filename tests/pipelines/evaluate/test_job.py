"""``landcover evaluate`` against a NumPy reference written out pixel by pixel in this file."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.palette import ACTIVE_CLASSES, CLASS_COLORS, CLASS_NAMES, UNKNOWN
from pipelines.evaluate import cli as evaluate_cli
from pipelines.evaluate import job as ev

URBAN, AGRI, RANGE, FOREST, WATER, BARREN = range(6)


def _noisy_rgb(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Palette colours with JPEG-like noise that the 128 threshold must see through."""
    rgb = CLASS_COLORS[ids].astype(int)
    high = rng.integers(128, 256, rgb.shape)  # a 255 channel becomes 128..255
    low = rng.integers(0, 128, rgb.shape)  # a 0 channel becomes 0..127
    return np.where(rgb == 255, high, low).astype(np.uint8)


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


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


@pytest.fixture
def crafted(tmp_path: Path) -> dict:
    """Two scored scenes; one prediction and one truth without partner; one size mismatch."""
    rng = np.random.default_rng(7)
    truth_dir, pred_dir, images_dir, second_dir = (
        tmp_path / name for name in ("truth", "pred", "images", "second")
    )
    for folder in (truth_dir, pred_dir, images_dir, second_dir):
        folder.mkdir()
    pairs = []
    for scene_id, (h, w) in {"a": (12, 10), "b": (9, 15)}.items():
        # truth: urban, agriculture, rangeland, forest and unknown pixels; never water or barren
        truth = rng.choice([URBAN, AGRI, RANGE, FOREST, UNKNOWN], size=(h, w)).astype(np.uint8)
        # prediction: mostly right, some wrong, some water (absent from truth), some unknown
        pred = np.where(rng.random((h, w)) < 0.6, truth, rng.integers(0, 5, (h, w))).astype(
            np.uint8
        )
        pred[0, :3] = UNKNOWN
        truth[0, 0] = URBAN  # a predicted-unknown pixel whose truth is scored: counted wrong
        pred_rgb = _noisy_rgb(pred, rng)
        pred_rgb[1, 1] = (250, 10, 20)  # off-palette (pure red after threshold) → unknown
        pred[1, 1] = UNKNOWN
        (truth_dir / f"{scene_id}_mask.png").write_bytes(_png(_noisy_rgb(truth, rng)))
        (pred_dir / f"{scene_id}_mask.png").write_bytes(_png(pred_rgb))
        (second_dir / f"{scene_id}_mask.png").write_bytes(_png(CLASS_COLORS[truth]))
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(image).save(images_dir / f"{scene_id}_sat.jpg")
        pairs.append((truth, pred))
    (pred_dir / "only-pred_mask.png").write_bytes(_png(CLASS_COLORS[np.zeros((4, 4), int)]))
    (truth_dir / "only-truth_mask.png").write_bytes(_png(CLASS_COLORS[np.zeros((4, 4), int)]))
    (pred_dir / "wrong-size_mask.png").write_bytes(_png(CLASS_COLORS[np.zeros((4, 5), int)]))
    (truth_dir / "wrong-size_mask.png").write_bytes(_png(CLASS_COLORS[np.zeros((4, 4), int)]))
    return {
        "root": tmp_path,
        "truth": str(truth_dir),
        "pred": str(pred_dir),
        "images": str(images_dir),
        "second": str(second_dir),
        "pairs": pairs,
    }


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


def test_pictures_and_a_second_model_through_the_cli(
    crafted: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "report"
    argv = ["--pred", crafted["pred"], "--truth", crafted["truth"], "--output", str(out)]
    argv += ["--images", crafted["images"], "--second-pred", crafted["second"]]
    assert evaluate_cli.main([*argv, "--labels", "unet", "perfect"]) == 0
    table = capsys.readouterr().out
    assert "mIoU" in table and "unet" in table and "perfect" in table and "urban" in table
    report = json.loads((out / "metrics.json").read_text())
    second = report["second_prediction"]
    assert second["label"] == "perfect" and second["scenes"] == 2
    assert second["miou"] == 1.0 and second["pixel_accuracy"] == 1.0
    assert report["pictures"] == 2
    for scene_id in ("a", "b"):
        with Image.open(out / "scenes" / f"{scene_id}.png") as picture:
            assert picture.width > 2 * picture.height  # four panels side by side
    assert not math.isnan(report["miou"])


def test_missing_folders_are_reported_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = ["--pred", str(tmp_path / "nope"), "--truth", str(tmp_path), "--output", str(tmp_path)]
    assert evaluate_cli.main(argv) == 2
    assert "nope" in capsys.readouterr().err
