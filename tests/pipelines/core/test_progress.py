"""Progress lines: scenes done of the total, rate and time left, at most one per interval."""

from __future__ import annotations

import io
import logging

from pipelines.core.progress import LOGGER_NAME, Progress, show_progress


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_are_rate_limited_and_say_done_rate_and_time_left(caplog):
    clock = _Clock()
    progress = Progress("predict", 10, every_s=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        clock.now += 2
        assert progress.advance() is None  # 2 s after the start: too soon
        clock.now += 8
        assert progress.advance() == "predict: 2/10 scenes, 0.20 scenes/s, ~40 s left"
        clock.now += 1
        assert progress.advance() is None
        for _ in range(7):
            clock.now += 1.5
            progress.advance()
        assert progress.done == 10
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    # one line 10 s in, the next 10 s later, and the last scene's always
    assert lines == [
        "predict: 2/10 scenes, 0.20 scenes/s, ~40 s left",
        "predict: 9/10 scenes, 0.45 scenes/s, ~2 s left",
        "predict: 10/10 scenes, 0.47 scenes/s, done",
    ]


def test_earlier_waves_count_as_done_but_not_in_the_rate():
    clock = _Clock()
    progress = Progress("predict", 8, done=4, every_s=0.0, clock=clock)
    clock.now += 4
    assert progress.advance(0.5) == "predict: 4.5/8 scenes, 0.12 scenes/s, ~28 s left"


def test_show_progress_prints_the_lines_once_on_a_stream():
    stream = io.StringIO()
    handler = show_progress(stream)
    try:
        assert show_progress(stream) is handler  # a second call adds no second handler
        Progress("preprocess", 1, every_s=60.0).advance()
        assert stream.getvalue().splitlines()[-1].startswith("preprocess: 1/1 scenes, ")
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)


def test_a_later_call_moves_the_one_handler_to_its_stream():
    """A CLI run earlier in the process (stderr) must not keep the lines from a later stream."""
    first, second = io.StringIO(), io.StringIO()
    handler = show_progress(first)
    try:
        assert show_progress(second) is handler
        Progress("predict", 2, every_s=0.0).advance(2)
        assert first.getvalue() == ""
        assert len(second.getvalue().splitlines()) == 1  # one handler: printed once
        assert second.getvalue().startswith("predict: 2/2 scenes, ")
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
