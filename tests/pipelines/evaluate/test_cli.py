"""``landcover evaluate``: pictures and a second model through the command line, clear errors.

That every ``--help`` is light is checked for all commands in ``tests/flows/test_cli.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from pipelines.evaluate import cli as evaluate_cli


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
