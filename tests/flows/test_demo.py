"""``landcover demo --quick``: the whole job through the flows, as CI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.demo import FULL, QUICK, holdout_baselines, summary_text


def test_summary_names_every_class_and_path() -> None:
    train_result = {
        "models": {
            "unet": {"val_miou": 0.8, "per_class_iou": {"urban": 0.9}},
            "resnet50_unet": {"val_miou": 0.5, "per_class_iou": {"urban": None}},
        },
        "promoted": True,
        "promoted_model": {"model_version": "unet-v1"},
    }
    text = summary_text(
        train_result,
        {"predicted": 4, "already_done": 0, "failed": 0},
        {"miou": 0.7, "per_class_iou": {"urban": 0.75}},
        {"masks:": "/w/predictions/unet-v1"},
    )
    assert "urban                    0.900               –           0.750" in text
    assert "mIoU                     0.800           0.500           0.700" in text
    assert "unet-v1 (promoted by this run)" in text
    assert "/w/predictions/unet-v1" in text


def test_summary_shows_the_holdout_baselines() -> None:
    text = summary_text(
        {"models": {"unet": {"val_miou": 0.8}}, "promoted": False},
        {},
        {"miou": 0.7, "baselines": {"rgb_mean_miou": 0.55, "majority_miou": 0.05}},
        {},
    )
    assert "nearest RGB mean 0.550, majority class 0.050" in text


def test_holdout_baselines_fit_on_labeled_and_score_the_holdout(tmp_path: Path) -> None:
    from pipelines.synth import write_scenes

    write_scenes(str(tmp_path / "raw"), 2, size=64, seed=0)
    write_scenes(str(tmp_path / "holdout"), 1, size=64, seed=1, first_id=900_000)
    scores = holdout_baselines(str(tmp_path / "raw"), str(tmp_path / "holdout"))
    assert set(scores) == {"rgb_mean_miou", "majority_miou"}
    assert all(0 <= value <= 1 for value in scores.values())
    assert holdout_baselines(str(tmp_path / "raw"), str(tmp_path / "none")) == {}


def test_full_demo_trains_more_than_the_quick_one() -> None:
    full_steps = FULL.training["epochs"] * FULL.training["steps_per_epoch"]
    assert FULL.labeled > QUICK.labeled and full_steps > 100
    for config in (FULL, QUICK):
        assert config.preprocessing["patch_size"] <= config.size


def test_demo_options_are_valid_flow_options() -> None:
    """The demo's option groups are what the flows accept (checked without running them)."""
    from flows.options import preprocess_options, train_config
    from models.registry import ARCHITECTURES
    from pipelines.predict.options import PredictOptions

    for config in (FULL, QUICK):
        assert config.archs and set(config.archs) <= set(ARCHITECTURES)
        for arch in config.archs:
            train_config(config.training, data="d", output="o", arch=arch)
        preprocess_options(config.preprocessing, input_uri="i", output_uri="o")
        assert PredictOptions(**config.inference).tile <= config.size


@pytest.mark.slow
def test_quick_demo_runs_the_whole_job(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo", "--root", str(root), "--quick"],
        env={**env, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "landcover demo: summary" in done.stdout
    for step in range(1, 6):
        assert f"=== [{step}/5]" in done.stdout
    summary = json.loads((root / "demo-summary.json").read_text())
    assert set(summary["train"]["models"]) == set(QUICK.archs) == {"unet", "resnet50_unet"}
    inference = summary["inference"]
    assert (inference["predicted"], inference["failed"]) == (QUICK.unlabeled, 0)
    masks = sorted(Path(inference["output"]).glob("*_mask.png"))
    assert len(masks) == QUICK.unlabeled
    assert summary["holdout"]["scenes"] == QUICK.unlabeled
    assert Path(summary["train"]["report"], "report.md").is_file()
    assert (root / "prefect").is_dir()  # the run history stays browsable
