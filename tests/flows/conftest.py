"""Fixtures for the flow tests: one Prefect test harness per session, tiny synthetic scenes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

TINY_SIZE = 128


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API (SQLite in a temp folder) for every flow run of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six labeled 128² synthetic scenes, written once per session (copy before changing)."""
    from pipelines.synth import write_scenes

    folder = tmp_path_factory.mktemp("tiny-scenes")
    write_scenes(str(folder), 6, size=TINY_SIZE, seed=3)
    return folder


@pytest.fixture
def root_with_raw(tmp_path: Path, tiny_scenes: Path) -> Path:
    """A fresh data root whose raw/ holds the tiny labeled scenes."""
    root = tmp_path / "root"
    shutil.copytree(tiny_scenes, root / "raw")
    return root


@pytest.fixture
def scene_readers() -> None:
    """Skip unless the decoders drop validation uses exist (``flows.tasks.validate_scenes``).

    ``pipelines.io.scenes.decode_scene`` and ``pipelines.io.labeled.read_labeled_scene`` move
    there from the predict and preprocess jobs on other branches; imported lazily, so the tests
    that need them run as soon as both modules are merged.
    """
    for module in ("pipelines.io.scenes", "pipelines.io.labeled"):
        pytest.importorskip(module, reason=f"{module} is not merged yet")
