"""Fault tier: SIGKILL preprocessing at several points; the root always resolves to a complete
dataset, the old one or the new one, never neither."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines import synth
from pipelines.io.records import read_manifest, resolve_dataset, verify_shards
from pipelines.preprocess.job import run_preprocess
from pipelines.preprocess.options import PreprocessOptions

# Runs preprocess in a child process that SIGKILLs itself at the named point (no exception,
# no cleanup: what a preempted worker or an OOM kill does).
LAUNCHER = textwrap.dedent(
    """
    import os, signal, sys
    from pipelines.io import versions
    from pipelines.preprocess import transforms
    from pipelines.preprocess.job import run_preprocess
    from pipelines.preprocess.options import PreprocessOptions

    point, raw, out = sys.argv[1:4]
    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
    if point == "before-publish":
        versions.publish = die
    elif point == "during-shards":
        real, seen = transforms.scene_records, []
        def records(*args, **kwargs):
            for n, record in enumerate(real(*args, **kwargs)):
                seen.append(1)
                if len(seen) == 3:
                    die()
                yield record
        transforms.scene_records = records
    run_preprocess(PreprocessOptions(raw, out, patch_size=16, val_fraction=0.3))
    """
)


@pytest.mark.slow
def test_killed_runs_leave_the_old_or_the_new_dataset(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    synth.write_scenes(str(raw), 3, size=32, seed=1)
    first = run_preprocess(PreprocessOptions(str(raw), str(out), patch_size=16, val_fraction=0.3))
    old = resolve_dataset(str(out))
    synth.write_scenes(str(raw), 5, size=32, seed=2)  # new input: the next dataset differs
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    for point in ("during-shards", "before-publish"):
        result = subprocess.run(
            [sys.executable, "-c", LAUNCHER, point, str(raw), str(out)],
            env=env,
            capture_output=True,
            timeout=300,
        )
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
        # The old dataset is still the one readers get, complete and verified.
        assert resolve_dataset(str(out)) == old
        assert read_manifest(str(out)) == first and verify_shards(str(out)) == []
    # A killed run's version folders are left unpublished, never half-read; a full re-run
    # switches to the new dataset.
    second = run_preprocess(PreprocessOptions(str(raw), str(out), patch_size=16, val_fraction=0.3))
    assert resolve_dataset(str(out)) != old and verify_shards(str(out)) == []
    assert second.total_scenes > first.total_scenes and read_manifest(old) == first
