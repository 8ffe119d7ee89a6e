"""``landcover evaluate``: pictures and a second model through the command line, clear errors,
and a ``--help`` that imports neither Beam nor TensorFlow."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipelines.evaluate import cli as evaluate_cli

HEAVY_MODULES = ("apache_beam", "tensorflow", "keras", "tensorflow_io", "matplotlib")
REPO_ROOT = Path(__file__).resolve().parents[3]


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


# Run in a fresh interpreter: this one has long imported Beam.
LIGHT_CHECK = """
import contextlib, io, json, sys
from flows.cli import main
for argv in (["evaluate", "--help"], ["evaluate", "--pred", "x"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
print(json.dumps(sorted(sys.modules)))
"""


def test_help_and_argument_errors_import_neither_beam_nor_tensorflow():
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_CHECK],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "pipelines.evaluate.cli" in loaded  # the stage's parser did run
    assert "pipelines.evaluate.job" not in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY_MODULES)
    assert heavy == []
