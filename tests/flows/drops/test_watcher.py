"""The drop-folder watcher: exactly one event per completed drop, none for incomplete ones."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flows.drops.events import BUCKET_LABEL, DROP_EVENT, DROP_MARKER, PREFIX_LABEL
from flows.drops.watcher import DropWatcher


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    @property
    def prefixes(self) -> list[str]:
        return [e["resource"][PREFIX_LABEL] for e in self.events]


def make_drop(folder: Path, name: str, *, complete: bool, files: int = 3) -> Path:
    drop = folder / name
    drop.mkdir(parents=True)
    for i in range(files):
        (drop / f"{i}_sat.jpg").write_bytes(b"jpeg")
    if complete:
        (drop / DROP_MARKER).touch()
    return drop


def test_one_event_per_completed_drop_none_for_incomplete(tmp_path: Path) -> None:
    make_drop(tmp_path, "a", complete=True)
    make_drop(tmp_path, "b", complete=False)
    events = Recorder()
    watcher = DropWatcher(tmp_path, events)
    assert watcher.poll() == ["a"]
    assert watcher.poll() == [] and watcher.poll() == []
    assert events.prefixes == ["a"]
    event = events.events[0]
    assert event["event"] == DROP_EVENT
    assert event["resource"][BUCKET_LABEL] == str(tmp_path.resolve())
    assert event["payload"]["uri"] == str(tmp_path.resolve() / "a")

    (tmp_path / "b" / DROP_MARKER).touch()  # b completes later: one event for it too
    assert watcher.poll() == ["b"]
    assert events.prefixes == ["a", "b"]


def test_restart_does_not_repeat_but_catches_up(tmp_path: Path) -> None:
    make_drop(tmp_path, "a", complete=True)
    first = Recorder()
    DropWatcher(tmp_path, first).poll()
    make_drop(tmp_path, "b", complete=True)  # completes while no watcher runs
    second = Recorder()
    DropWatcher(tmp_path, second).poll()
    assert first.prefixes == ["a"] and second.prefixes == ["b"]


def test_reused_folder_with_a_new_marker_is_a_new_drop(tmp_path: Path) -> None:
    drop = make_drop(tmp_path, "a", complete=True)
    events = Recorder()
    watcher = DropWatcher(tmp_path, events)
    watcher.poll()
    (drop / DROP_MARKER).unlink()  # what the imagery-drop flow does once it has unpacked it
    assert watcher.poll() == []
    time.sleep(0.01)
    (drop / DROP_MARKER).touch()
    assert watcher.poll() == ["a"]
    assert events.prefixes == ["a", "a"]


def test_failed_emit_is_retried_on_the_next_scan(tmp_path: Path) -> None:
    make_drop(tmp_path, "a", complete=True)
    calls = []

    def flaky(event: dict[str, Any]) -> None:
        calls.append(event)
        if len(calls) == 1:
            raise ConnectionError("server not up yet")

    watcher = DropWatcher(tmp_path, flaky)
    with pytest.raises(ConnectionError):
        watcher.poll()
    assert watcher.poll() == ["a"]
    assert len(calls) == 2


def test_quiet_period_completes_a_drop_without_marker(tmp_path: Path) -> None:
    make_drop(tmp_path, "a", complete=False)
    now = [time.time()]
    events = Recorder()
    watcher = DropWatcher(tmp_path, events, quiet_seconds=30, clock=lambda: now[0])
    assert watcher.poll() == []
    now[0] += 31
    assert watcher.poll() == ["a"]
    assert watcher.poll() == []
    assert events.prefixes == ["a"]


def test_running_watcher_reacts_to_a_drop_once(tmp_path: Path) -> None:
    """The watchdog loop: files first, marker last → one event, however many files."""
    events = Recorder()
    watcher = DropWatcher(tmp_path, events)
    stop = threading.Event()
    thread = threading.Thread(target=watcher.run, args=(stop,), kwargs={"interval": 0.5})
    thread.start()
    try:
        drop = make_drop(tmp_path, "live", complete=False, files=5)
        time.sleep(1.0)
        assert events.events == []  # files alone: not complete
        (drop / DROP_MARKER).touch()
        deadline = time.monotonic() + 10
        while not events.events and time.monotonic() < deadline:
            time.sleep(0.1)
        (drop / "late_sat.jpg").write_bytes(b"x")  # more activity: still the same drop
        time.sleep(1.5)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert events.prefixes == ["live"]
