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


def test_the_default_writes_to_stderr_as_it_is_at_each_line(capsys):
    handler = show_progress()
    try:
        assert show_progress() is handler
        Progress("preprocess", 3, every_s=0.0).advance(3)
        assert capsys.readouterr().err.startswith("preprocess: 3/3 scenes, ")
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)


def test_a_later_call_for_another_stream_replaces_the_one_handler():
    """A CLI run earlier in the process must not keep the lines from a later stream, even closed."""
    first, second = io.StringIO(), io.StringIO()
    show_progress(first)
    first.close()  # e.g. a test's captured stderr, closed when that test ended
    handler = show_progress(second)
    try:
        ours = [
            h
            for h in logging.getLogger(LOGGER_NAME).handlers
            if h.__class__.__module__ != "_pytest.logging"
        ]
        assert ours == [handler]
        Progress("predict", 2, every_s=0.0).advance(2)
        assert len(second.getvalue().splitlines()) == 1  # one handler: printed once
        assert second.getvalue().startswith("predict: 2/2 scenes, ")
    finally:
        logging.getLogger(LOGGER_NAME).removeHandler(handler)
