"""The answer commands' shared ending and ``--gsd`` flag."""

from __future__ import annotations

import argparse
import json

import pytest

from pipelines.core.cli import (
    USAGE_ERROR,
    add_map_gsd,
    non_negative_float,
    print_error,
    print_summary,
)


def test_a_summary_is_printed_as_json_and_exits_0(capsys):
    assert print_summary("landcover x", lambda: {"scenes": 3}) == 0
    assert json.loads(capsys.readouterr().out) == {"scenes": 3}


@pytest.mark.parametrize("error", [ValueError("a.tif: no CRS"), FileNotFoundError("b.tif")])
def test_bad_input_is_one_line_naming_it_on_stderr_and_exits_2(capsys, error):
    def run() -> dict:
        raise error

    assert print_summary("landcover x", run) == USAGE_ERROR == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"landcover x: error: {error}\n"


def test_a_crash_is_not_reported_as_bad_input():
    def run() -> dict:
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError):
        print_summary("landcover x", run)


@pytest.mark.parametrize("text", ["0", "-1", "inf", "nan", "half"])
def test_gsd_must_be_a_positive_finite_number(text, capsys):
    parser = argparse.ArgumentParser()
    add_map_gsd(parser)
    assert parser.parse_args(["--gsd", "0.5"]).gsd == 0.5
    assert parser.parse_args([]).gsd is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--gsd", text])


def test_non_negative_takes_zero_and_refuses_negative_and_infinite():
    assert non_negative_float("0") == 0.0
    assert non_negative_float("2.5") == 2.5
    for text in ["-0.1", "inf", "nan", "x"]:
        with pytest.raises(argparse.ArgumentTypeError):
            non_negative_float(text)


def test_print_error_is_the_one_error_line(capsys):
    status = print_error("landcover evaluate", FileNotFoundError("no masks under /x"))
    assert status == USAGE_ERROR == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "landcover evaluate: error: no masks under /x\n"
