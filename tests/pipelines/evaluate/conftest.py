"""The evaluate tests' shared scenes: crafted truths and predictions whose scores are known.

A fixture rather than an importable module, so it works under any pytest import mode.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.palette import CLASS_COLORS, UNKNOWN

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
