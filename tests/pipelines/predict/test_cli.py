"""``landcover predict``: the summary on stdout, clear argument errors.

That every ``--help`` is light is checked for all commands in ``tests/flows/test_cli.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.predict import cli as predict_cli


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


def test_parser_defaults_are_the_shared_tiling_defaults():
    from pipelines.core.tiling import TILE_BATCH_SIZE, TILE_OVERLAP, TILE_SIZE

    args, beam_args = predict_cli.build_parser().parse_known_args(
        ["--model", "m", "--input", "i", "--output", "o", "--runner", "DataflowRunner"]
    )
    assert (args.tile, args.overlap, args.batch_size) == (TILE_SIZE, TILE_OVERLAP, TILE_BATCH_SIZE)
    assert (args.scenes_per_wave, args.overwrite, args.class_ids) == (None, False, False)
    assert beam_args == ["--runner", "DataflowRunner"]
