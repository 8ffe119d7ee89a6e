"""Progress of a long run: scenes done of the total, the rate and the time left, in one log line.

Preprocess and predict used to print nothing until they finished. The per-scene DoFn of each
job holds a :class:`Progress` and calls :meth:`Progress.advance` once per scene; a line is
logged (logger ``landcover.progress``, INFO) at most every ``every_s`` seconds and for the last
scene, so the cost is one clock read per scene (scenes take ~0.3 s to minutes), unmeasurable.

Why a log line from the DoFn and not a progress file or a Beam counter read by the driver: it is
the one channel every runner already carries. Under the DirectRunner the DoFn runs in the
launching process and the line reaches its stderr (the CLIs attach a handler to this logger);
on Dataflow each worker's INFO logs go to Cloud Logging under the job, while the jobs' Beam
counters (``scenes_ok``, ``scenes_predicted``) give the Dataflow UI its global totals. A
driver polling counters would need a non-blocking run and metrics the DirectRunner only
reports at the end; a progress file would be one more object written per scene on GCS.

Each DoFn instance counts what it did itself: with one worker (the local default) that is the
whole job; with several, each line is that worker's share, next to the job's total.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

LOGGER_NAME = "landcover.progress"
EVERY_S = 10.0

log = logging.getLogger(LOGGER_NAME)


class Progress:
    """Counts scenes done against ``total`` and logs a line at most every ``every_s`` seconds.

    ``done`` starts the count (scenes finished before this run, e.g. earlier waves), so the rate
    and the time left are those of this run.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        done: float = 0,
        every_s: float = EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.every_s, self.clock = label, total, every_s, clock
        self.done = float(done)
        self._start_done = float(done)
        self._started = clock()
        self._last = self._started

    def advance(self, scenes: float = 1.0) -> str | None:
        """Count ``scenes`` more done; the line logged now, or None (too soon since the last)."""
        self.done += scenes
        now = self.clock()
        finished = self.total > 0 and self.done >= self.total
        if now - self._last < self.every_s and not finished:
            return None
        self._last = now
        line = self.line(now)
        log.info("%s", line)
        return line

    def line(self, now: float) -> str:
        """``"<label>: 12/40 scenes, 0.52 scenes/s, ~54 s left"`` (rate over this run)."""
        elapsed = max(now - self._started, 1e-9)
        rate = (self.done - self._start_done) / elapsed
        left = max(self.total - self.done, 0.0)
        eta = f"~{left / rate:.0f} s left" if rate > 0 and left else "done" if not left else "?"
        count = f"{self.done:.0f}" if self.done.is_integer() else f"{self.done:.1f}"
        return f"{self.label}: {count}/{self.total} scenes, {rate:.2f} scenes/s, {eta}"


class _ProgressHandler(logging.StreamHandler):
    """Progress lines on ``target``, or on ``sys.stderr`` as it is at each line when None.

    Resolving stderr per line (as logging's last resort does) means a handler made under one
    test's capture, or before a caller swapped stderr, never writes to a stream closed since.
    """

    def __init__(self, target: Any | None) -> None:
        logging.Handler.__init__(self)
        self.target = target
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr if self.target is None else self.target


def show_progress(stream: Any | None = None) -> logging.Handler:
    """Print progress lines on ``stream`` (default: ``sys.stderr`` at each line): what CLIs call.

    There is one progress handler per process: a call for the stream it already writes to
    returns it, a call for another stream replaces it (a CLI run after another in one process
    gets the lines where it asked, never on a stream an earlier caller left behind, which may
    be closed by now), so no line is printed twice.
    """
    for handler in list(log.handlers):
        if isinstance(handler, _ProgressHandler):
            if handler.target is stream:
                return handler
            log.removeHandler(handler)  # not flushed: its stream may be closed
    handler = _ProgressHandler(stream)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler
