"""The local drop-folder watcher: one ``landcover.imagery.dropped`` event per completed drop.

Layout: every sub-folder of the watched folder is a drop; it is complete when its ``_DONE``
marker exists (write the scene files first, the marker last, as a GCS producer does). With
``quiet_seconds`` a drop without a marker also counts as complete once nothing in it has changed
for that long, for people who copy folders in with a file manager; the marker stays the
reliable way.

Once per completion: a drop is identified by (folder name, marker modification time),
remembered in the root's ``state/watcher.json`` (:meth:`flows.layout.Layout.watcher_state`:
the watched folder is a root's ``drops/``, where uploaders write, so the watcher keeps nothing
there). While it runs, the watcher announces each completion once. When it **starts**, it
announces again every drop that is still complete: the ``imagery-drop`` flow deletes the marker
(and moves every file out) once it has unpacked a drop, so a drop still complete at start is
one whose run was killed or never ran, and the new run finishes it (the flow is idempotent: a
drop already being unpacked is found done). Reusing a folder name later (with a new marker) is
a new drop.

Scanning is the single source of truth (:meth:`DropWatcher.poll`); watchdog's file-system
notifications only wake the scan early, and a periodic poll covers file systems that send no
notifications (network mounts).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows.drops.events import DROP_MARKER, drop_event
from flows.layout import Layout

logger = logging.getLogger("landcover.watcher")

Emit = Callable[[dict[str, Any]], None]


def emit_to_prefect(event: dict[str, Any]) -> None:
    """Send the event to the Prefect API the environment points at (``PREFECT_API_URL``)."""
    from prefect.events import emit_event

    emitted = emit_event(**event)
    if emitted is None:
        raise RuntimeError("Prefect did not accept the event: is PREFECT_API_URL set?")


def flush_events(timeout: float = 10.0) -> None:
    """Wait for queued events to reach the server (before the process exits)."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=timeout)


class DropWatcher:
    """Finds completed drops under ``folder`` and emits one event for each."""

    def __init__(
        self,
        folder: Path | str,
        emit: Emit = emit_to_prefect,
        *,
        quiet_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        state_file: Path | str | None = None,
    ) -> None:
        """``state_file`` defaults to the state of the root whose ``drops/`` is ``folder``."""
        self.folder = Path(folder).resolve()
        self.emit = emit
        self.quiet_seconds = quiet_seconds
        self.clock = clock
        self.state_file = Path(state_file or Layout(str(self.folder.parent)).watcher_state)
        self.seen: dict[str, int] = self._load_state()
        self.started = False  # the first poll also announces unfinished drops again

    def _load_state(self) -> dict[str, int]:
        try:
            return {str(k): int(v) for k, v in json.loads(self.state_file.read_text()).items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save_state(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.seen, indent=1, sort_keys=True))
        tmp.replace(self.state_file)

    def completion_key(self, drop: Path) -> int | None:
        """The drop's completion stamp (ns), or ``None`` while it is not complete."""
        marker = drop / DROP_MARKER
        try:
            return marker.stat().st_mtime_ns
        except FileNotFoundError:
            pass
        if self.quiet_seconds is None:
            return None
        files = [p for p in drop.iterdir() if p.is_file()]
        if not files:
            return None
        latest = max(p.stat().st_mtime_ns for p in files)
        if self.clock() - latest / 1e9 < self.quiet_seconds:
            return None
        return latest

    def completed(self) -> list[tuple[str, int]]:
        """(drop name, completion stamp) of every complete drop, sorted by name."""
        if not self.folder.is_dir():
            return []
        found = []
        for drop in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            if drop.name.startswith("."):
                continue
            try:
                key = self.completion_key(drop)
            except FileNotFoundError:  # the folder changed under us: next scan
                continue
            if key is not None:
                found.append((drop.name, key))
        return found

    def poll(self) -> list[str]:
        """Emit an event for each newly completed drop; returns their names.

        The first poll of a watcher also announces every complete drop it announced before:
        still complete means still unfinished (its run was killed, or never started).
        """
        resuming = not self.started
        new = [
            (name, key) for name, key in self.completed() if resuming or self.seen.get(name) != key
        ]
        for name, key in new:
            again = self.seen.get(name) == key
            payload: dict[str, Any] = {"completed_ns": key, "resumed": again}
            self.emit(drop_event(str(self.folder), name, payload=payload))
            if again:
                logger.info("drop %s is unfinished: announced again", self.folder / name)
            else:
                logger.info("drop %s complete: event emitted", self.folder / name)
            self.seen[name] = key
            self._save_state()
        self.started = True
        return [name for name, _ in new]

    def run(self, stop: threading.Event, interval: float = 2.0) -> None:
        """Poll until ``stop`` is set; file-system events wake the poll early."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        wake = threading.Event()

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                wake.set()

        self.folder.mkdir(parents=True, exist_ok=True)
        observer = Observer()
        observer.schedule(Wake(), str(self.folder), recursive=True)
        observer.start()
        try:
            while not stop.is_set():
                try:
                    self.poll()
                except Exception:  # a failed emit is retried on the next scan
                    logger.exception("watcher scan failed; retrying")
                wake.wait(interval)
                wake.clear()
                time.sleep(0.2)  # let a burst of writes settle before scanning
        finally:
            observer.stop()
            observer.join(timeout=5)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flows.drops.watcher",
        description="Watch a drop folder; emit landcover.imagery.dropped for each sub-folder "
        f"that gets a {DROP_MARKER} marker.",
    )
    parser.add_argument("--folder", required=True, help="the folder whose sub-folders are drops")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between scans")
    parser.add_argument(
        "--state-file",
        default=None,
        help="where announced drops are remembered (default: state/watcher.json of the root "
        "whose drops/ --folder is)",
    )
    parser.add_argument(
        "--quiet-seconds",
        type=float,
        default=None,
        help="also treat a drop as complete after this many seconds without changes",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s watcher: %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    watcher = DropWatcher(args.folder, quiet_seconds=args.quiet_seconds, state_file=args.state_file)
    logger.info("watching %s for drops (complete = %s marker)", watcher.folder, DROP_MARKER)
    try:
        watcher.run(stop, interval=args.interval)
    finally:
        flush_events()
    return 0


if __name__ == "__main__":
    sys.exit(main())
