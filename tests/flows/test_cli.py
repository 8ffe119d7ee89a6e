"""``landcover``: one dispatcher; help and argument errors answer without the heavy stacks.

Each case runs the real command in a fresh interpreter with ``-X importtime``, whose report
names every module the process imported, so a lazy import that turned eager shows up here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.cli import BENCHMARKS, COMMANDS, main

# What `--help` and a bad flag must not pay for (TensorFlow alone is seconds).
HEAVY = ("tensorflow", "keras", "apache_beam", "prefect", "tensorflow_io", "matplotlib")


def command_lines() -> list[pytest.ParameterSet]:
    lines = [pytest.param([], id="landcover")]
    lines += [pytest.param([name], id=name) for name in COMMANDS]
    lines.append(pytest.param(["bench"], id="bench"))
    for name in BENCHMARKS:
        lines.append(pytest.param(["bench", name], id=f"bench-{name}"))
    return lines


def run_landcover(*args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``landcover ARGS`` in a fresh interpreter; (the process, the modules it imported)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, imported


def heavy(imported: set[str]) -> list[str]:
    return sorted(m for m in imported if m.split(".")[0] in HEAVY)


def diagnostics(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the import-time report: warnings and error messages."""
    return [line for line in done.stderr.splitlines() if not line.startswith("import time:")]


@pytest.mark.parametrize("argv", command_lines())
def test_help_is_light_and_quiet(argv: list[str]) -> None:
    done, imported = run_landcover(*argv, "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: landcover" in done.stdout
    assert heavy(imported) == []
    assert diagnostics(done) == []  # no FutureWarning or DeprecationWarning on the way


@pytest.mark.parametrize("argv", [p for p in command_lines() if p.values[0]])
def test_argument_errors_are_light(argv: list[str]) -> None:
    done, imported = run_landcover(*argv, "--no-such-option")
    assert done.returncode == 2, done.stderr[-2000:]
    assert any("error" in line or "unknown" in line for line in diagnostics(done))
    assert heavy(imported) == []


def test_the_importtime_report_sees_a_heavy_import() -> None:
    """The check above can fail: a module imported at run time is in the report."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import apache_beam.typehints"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "apache_beam.typehints" in heavy(imported)


def test_usage_lists_every_command_and_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    usage = capsys.readouterr().out
    assert all(f"  {name} " in usage for name in (*COMMANDS, "bench"))
    assert main(["bench", "--help"]) == 0
    usage = capsys.readouterr().out
    assert all(f"  {name} " in usage for name in BENCHMARKS)


def test_an_unknown_command_names_the_valid_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trian"]) == 2
    error = capsys.readouterr().err
    assert "unknown command 'trian'" in error and "train" in error
    assert main(["bench", "fit"]) == 2
    assert "landcover bench: unknown command 'fit'" in capsys.readouterr().err


def test_every_command_module_exists() -> None:
    """Without importing them: each stage's CLI module exists where the table says."""
    import importlib.util

    for module, _ in (*COMMANDS.values(), *BENCHMARKS.values()):
        assert importlib.util.find_spec(module) is not None, module


def test_missing_credentials_fail_in_seconds_with_one_line(tmp_path: Path) -> None:
    """A gs:// argument without credentials: one line and exit 2, before any stage import."""
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "missing-key.json")
    argv = ["predict", "--model", "gs://b/m", "--input", "gs://b/in", "--output", "gs://b/out"]
    code = "import sys; from flows.cli import main; rc = main(sys.argv[1:]); " + (
        "heavy = [m for m in ('tensorflow', 'keras', 'apache_beam') if m in sys.modules]; "
        "print('HEAVY', heavy); sys.exit(rc)"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env, timeout=120
    )
    assert time.monotonic() - started < 60
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Google Cloud credentials for gs://b/" in lines[0]
    assert "gcloud auth application-default login" in lines[0]
    assert "HEAVY []" in done.stdout
