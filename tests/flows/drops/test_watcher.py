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


@pytest.fixture
def tmp_path(tmp_path: Path) -> Path:
    """The watched folder: a root's drops/ (the watcher keeps its state in the root's state/)."""
    return tmp_path / "drops"


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


def test_restart_does_not_repeat_finished_drops_but_catches_up(tmp_path: Path) -> None:
    make_drop(tmp_path, "a", complete=True)
    first = Recorder()
    DropWatcher(tmp_path, first).poll()
    (tmp_path / "a" / DROP_MARKER).unlink()  # the imagery-drop flow finished it
    make_drop(tmp_path, "b", complete=True)  # completes while no watcher runs
    second = Recorder()
    DropWatcher(tmp_path, second).poll()
    assert first.prefixes == ["a"] and second.prefixes == ["b"]
    assert second.events[0]["payload"]["resumed"] is False


def test_restart_announces_unfinished_drops_again(tmp_path: Path) -> None:
    """A drop still complete at start is one whose run was killed: announced again, once."""
    make_drop(tmp_path, "killed", complete=True)
    make_drop(tmp_path, "done", complete=True)
    first = Recorder()
    DropWatcher(tmp_path, first).poll()
    (tmp_path / "done" / DROP_MARKER).unlink()  # finished; "killed"'s run died half-way
    second = Recorder()
    restarted = DropWatcher(tmp_path, second)
    assert restarted.poll() == ["killed"] and restarted.poll() == []
    assert second.events[0]["payload"]["resumed"] is True
    assert first.prefixes == ["done", "killed"] and second.prefixes == ["killed"]


def test_state_lives_in_the_roots_state_folder_not_in_the_drops(tmp_path: Path) -> None:
    from flows.layout import Layout

    make_drop(tmp_path, "a", complete=True)
    watcher = DropWatcher(tmp_path, Recorder())
    watcher.poll()
    assert watcher.state_file == Path(Layout(str(tmp_path.parent)).watcher_state)
    assert watcher.state_file.is_file() and watcher.state_file.parent.name == "state"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # nothing of the watcher's


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
