"""``landcover preprocess``: light to import, defaults from PreprocessOptions, bad flags exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.core.records import RecordFormat
from pipelines.preprocess import cli as preprocess_cli
from pipelines.preprocess.options import PreprocessOptions


def test_cli_imports_neither_beam_nor_tensorflow() -> None:
    code = (
        "import sys\n"
        "from pipelines.preprocess import cli\n"
        "cli.build_parser().format_help()\n"
        "heavy = [m for m in ('apache_beam', 'tensorflow') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_help_answers_without_running(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        preprocess_cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "--val-fraction" in capsys.readouterr().out


def test_flags_become_options_with_the_options_defaults() -> None:
    parser = preprocess_cli.build_parser()
    args, beam_args = parser.parse_known_args(
        ["--input", "/in", "--output", "/out", "--runner", "DirectRunner"]
    )
    assert beam_args == ["--runner", "DirectRunner"]
    assert preprocess_cli.options_from(args) == PreprocessOptions("/in", "/out")
    argv = ["--input", "/in", "--output", "/out", "--patch-size", "64", "--val-fraction", "0"]
    argv += ["--seed", "3", "--codec", "png", "--compression", "zlib", "--num-shards", "4"]
    options = preprocess_cli.options_from(parser.parse_args(argv))
    assert options == PreprocessOptions("/in", "/out", 64, 0.0, 3, RecordFormat("png", "zlib"), 4)


def test_invalid_options_are_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "1.5": ["--val-fraction", "1.5"],
        "val_fraction must be in [0, 1), got 1.0": ["--val-fraction", "1"],
        "patch_size must be positive": ["--patch-size", "0"],
        "patch_size must be positive, got -5": ["--patch-size", "-5"],
        "positive integer or 'auto'": ["--num-shards", "0"],
        "label map target 9": ["--label-map", "1:9"],
        "is not VALUE:CLASS_ID": ["--label-map", "1=0"],
        "invalid choice": ["--mask-kind", "grey"],
        "No such file": ["--label-map", str(tmp_path / "missing.json")],
        "gsd must be a positive number of metres per pixel, got 0.0": ["--gsd", "0"],
        "got -2.0": ["--target-gsd", "-2"],
        "could not convert": ["--target-gsd", "half"],
    }
    for message, argv in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            preprocess_cli.main(["--input", str(tmp_path), "--output", str(tmp_path), *argv])
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err, argv


def test_label_map_from_flag_or_json_file(tmp_path: Path) -> None:
    parser = preprocess_cli.build_parser()
    base = ["--input", "/in", "--output", "/out"]
    args = parser.parse_args([*base, "--label-map", "1:0, 2:1,255:6"])
    assert preprocess_cli.options_from(args).label_map == ((1, 0), (2, 1), (255, 6))
    (tmp_path / "map.json").write_text('{"10": 3, "20": 4}')
    args = parser.parse_args(
        [*base, "--label-map", str(tmp_path / "map.json"), "--mask-kind", "ids"]
    )
    options = preprocess_cli.options_from(args)
    assert options.label_map == ((10, 3), (20, 4)) and options.mask_kind == "ids"
