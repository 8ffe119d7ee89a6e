"""``landcover predict``: the summary on stdout, clear argument errors, a light ``--help``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.predict import cli as predict_cli

HEAVY_MODULES = ("apache_beam", "tensorflow", "keras", "tensorflow_io")
REPO_ROOT = Path(__file__).resolve().parents[3]


def test_cli_prints_the_summary_and_rejects_bad_arguments(
    tmp_path: Path,
    model_dir: Path,
    capsys: pytest.CaptureFixture[str],
    make_image,
    encode_image,
):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_sat.png").write_bytes(encode_image(make_image(40, 40, seed=30), "PNG"))
    argv = ["--model", str(model_dir / "model.keras"), "--input", str(tmp_path / "in")]
    argv += ["--output", str(tmp_path / "out"), "--tile", "32", "--overlap", "8"]
    assert predict_cli.main([*argv, "--batch-size", "2", "--direct_num_workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["predicted"], summary["failed"]) == (1, 0)
    assert predict_cli.main([*argv, "--overlap", "20"]) == 2  # overlap > tile // 2
    assert "overlap" in capsys.readouterr().err
    same = ["--model", str(model_dir), "--input", str(tmp_path / "in")]
    assert predict_cli.main([*same, "--output", str(tmp_path / "in")]) == 2
    missing = [
        "--model",
        str(tmp_path),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "y"),
    ]
    assert predict_cli.main(missing) == 2
    assert "no model" in capsys.readouterr().err


# Run in a fresh interpreter: this one has long imported Beam and TensorFlow.
LIGHT_CHECK = """
import contextlib, io, json, sys
from flows.cli import main
for argv in (["predict", "--help"], ["predict", "--input", "x"]):
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
    assert "pipelines.predict.cli" in loaded  # the stage's parser did run
    assert "pipelines.predict.job" not in loaded
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY_MODULES)
    assert heavy == []


def test_parser_defaults_are_the_shared_tiling_defaults():
    from pipelines.core.tiling import TILE_BATCH_SIZE, TILE_OVERLAP, TILE_SIZE

    args, beam_args = predict_cli.build_parser().parse_known_args(
        ["--model", "m", "--input", "i", "--output", "o", "--runner", "DataflowRunner"]
    )
    assert (args.tile, args.overlap, args.batch_size) == (TILE_SIZE, TILE_OVERLAP, TILE_BATCH_SIZE)
    assert (args.scenes_per_wave, args.overwrite, args.class_ids) == (None, False, False)
    assert beam_args == ["--runner", "DataflowRunner"]
