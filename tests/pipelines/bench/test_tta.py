"""``landcover bench tta``: scoring predicted masks against truths, finding labeled scenes."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.bench import tta
from pipelines.core.palette import encode_mask
from pipelines.io.imaging import encode_png


def _write_mask(path, class_ids: np.ndarray) -> None:
    path.write_bytes(encode_png(encode_mask(class_ids)))


def test_score_masks_perfect_and_half_wrong(tmp_path) -> None:
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    truth.mkdir()
    pred.mkdir()
    ids = np.zeros((8, 8), np.uint8)
    ids[:, 4:] = 1  # half urban (0), half agriculture (1)
    _write_mask(truth / "7_mask.png", ids)
    _write_mask(pred / "7_mask.png", ids)
    assert tta.score_masks(str(pred), str(truth), ["7"]) == {"miou": 1.0, "pixel_accuracy": 1.0}
    _write_mask(pred / "7_mask.png", np.zeros((8, 8), np.uint8))  # all urban
    score = tta.score_masks(str(pred), str(truth), ["7"])
    assert score["pixel_accuracy"] == 0.5
    # urban IoU 32/64, agriculture 0/32 → mean 0.25
    assert score["miou"] == pytest.approx(0.25)


def test_labeled_scene_ids_needs_image_and_mask(tmp_path) -> None:
    for name in ["1_sat.jpg", "1_mask.png", "2_sat.jpg", "3_mask.png"]:
        (tmp_path / name).write_bytes(b"")
    assert tta.labeled_scene_ids(str(tmp_path)) == ["1"]
