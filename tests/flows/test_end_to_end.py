"""The flows on tiny synthetic data with the real stages (Beam, Keras), under the test harness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from flows.drops.drop import imagery_drop
from flows.drops.events import DROP_MARKER
from flows.inference import nightly_inference
from flows.layout import Layout
from flows.registry import read_promoted
from flows.train import train
from pipelines.core.palette import CLASS_COLORS
from pipelines.predict.options import PredictOptions
from pipelines.synth import write_scenes

TINY_INFERENCE = PredictOptions(tile=64, overlap=16)
TINY: dict[str, Any] = {
    "training": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "base_filters": 4},
    "preprocessing": {"patch_size": 64, "val_fraction": 0.34},
    "inference": TINY_INFERENCE,
    "beam_args": [],
}


def palette_only(path: Path) -> bool:
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    colors = {tuple(int(v) for v in c) for c in np.unique(pixels, axis=0)}
    return colors <= {tuple(int(v) for v in c) for c in CLASS_COLORS}


@pytest.mark.slow
def test_train_then_drop_then_nightly_inference(
    prefect_harness: None, root_with_raw: Path, tmp_path: Path, scene_readers: None
) -> None:
    root = str(root_with_raw)
    layout = Layout(root)

    # One architecture keeps this test short; the demo test trains both.
    result = train(root=root, archs=("unet",), **TINY)

    assert result["preprocessed"] and result["val_scenes"]
    for arch in ("unet",):
        model_dir = Path(layout.model_dir(arch, result["run"]))
        assert (model_dir / "model.keras").is_file()
        metadata = json.loads((model_dir / "metadata.json").read_text())
        assert metadata["arch"] == arch
        metrics = json.loads(Path(result["report"], arch, "metrics.json").read_text())
        assert metrics["scenes"] == len(result["val_scenes"])
        assert 0.0 <= metrics["miou"] <= 1.0
        assert result["models"][arch]["val_miou"] == pytest.approx(metrics["miou"])
        assert Path(result["report"], arch, "confusion_matrix.png").is_file()
        assert len(list(Path(result["report"], arch, "scenes").glob("*.png"))) == len(
            result["val_scenes"]
        )
    pointer = read_promoted(root)
    assert result["promoted"] and pointer is not None
    scores = {a: m["val_miou"] for a, m in result["models"].items()}
    assert pointer["arch"] == max(scores, key=lambda a: scores[a])
    assert "| urban |" in Path(result["report"], "report.md").read_text()

    # A drop: one new labeled scene and two unlabeled ones.
    drops = tmp_path / "drops"
    drop = drops / "d1"
    write_scenes(str(drop), 1, size=96, seed=11, first_id=500)
    unlabeled = write_scenes(str(drop), 2, size=80, seed=12, first_id=600, labeled=False)
    (drop / DROP_MARKER).touch()
    summary = imagery_drop(bucket=str(drops), prefix="d1", root=root, retrain=False)
    assert summary["labeled"] == ["500"] and summary["unlabeled"] == unlabeled
    assert (root_with_raw / "raw" / "500_mask.png").is_file()
    inference = summary["inference"]
    assert (inference["predicted"], inference["failed"]) == (2, 0)
    predictions = Path(layout.predictions(pointer["model_version"]))
    for scene_id in unlabeled:
        mask = predictions / f"{scene_id}_mask.png"
        assert Image.open(mask).size == (80, 80)
        assert palette_only(mask)

    # Nightly, with the drop's inference options: only the scene that arrived since is
    # predicted; the other two have current done-records (same input, model and options).
    write_scenes(layout.incoming, 1, size=70, seed=13, first_id=700, labeled=False)
    nightly = nightly_inference(root=root, beam_args=[])
    assert (nightly["scenes"], nightly["already_done"], nightly["predicted"]) == (3, 2, 1)
    assert Image.open(predictions / "700_mask.png").size == (70, 70)
    shutil.rmtree(drops)
