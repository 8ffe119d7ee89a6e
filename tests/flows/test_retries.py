"""Transient storage errors are retried with backoff; everything else fails at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import tasks
from flows.retries import (
    BACKOFF_FACTOR,
    RETRIES,
    is_transient,
    retry_on_transient,
    storage_retry_options,
)
from pipelines.core.errors import BadInputError
from pipelines.io import integrity


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("read timed out"), True),
        (OSError(5, "I/O error"), True),
        (gexc.ServiceUnavailable("503"), True),
        (gexc.TooManyRequests("429"), True),
        (gexc.InternalServerError("500"), True),
        (gexc.DeadlineExceeded("deadline"), True),
        (FileNotFoundError("gs://b/missing"), False),
        (PermissionError("denied"), False),
        (gexc.NotFound("no such bucket"), False),
        (gexc.Forbidden("403"), False),
        (BadInputError("gs://b/1_sat.jpg", "truncated JPEG"), False),
        (ValueError("patch size must be positive"), False),
        (KeyError("arch"), False),
        (None, False),
    ],
)
def test_is_transient(error: BaseException | None, transient: bool) -> None:
    assert is_transient(error) is transient


def test_beam_io_errors_are_judged_by_what_they_wrap() -> None:
    from apache_beam.io.filesystem import BeamIOError

    assert is_transient(BeamIOError("match failed", {"gs://b/x": gexc.ServiceUnavailable("503")}))
    assert not is_transient(BeamIOError("match failed", {"gs://b/x": gexc.NotFound("404")}))


def test_wrapped_transient_cause_counts() -> None:
    try:
        try:
            raise ConnectionError("dropped")
        except ConnectionError as inner:
            raise RuntimeError("upload failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_storage_tasks_use_the_retry_policy() -> None:
    options = storage_retry_options()
    assert options["retries"] == RETRIES == 3
    assert options["retry_delay_seconds"](RETRIES) == [BACKOFF_FACTOR * 2**i for i in range(3)]
    for name in ("move_files", "copy_files", "read_json", "write_json", "preprocess", "predict"):
        declared = getattr(tasks, name)
        assert declared.retries == RETRIES, name
        assert declared.retry_condition_fn is retry_on_transient, name
        assert declared.retry_delay_seconds == [2.0, 4.0, 8.0], name


class FlakyOnce:
    """Raises ``error`` on the first call, then delegates to the real function."""

    def __init__(self, real: Any, error: BaseException) -> None:
        self.real, self.error, self.calls = real, error, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == 1:
            raise self.error
        return self.real(*args, **kwargs)


def test_move_task_succeeds_on_second_attempt_after_a_storage_error(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst = tmp_path / "in" / "1_sat.jpg", tmp_path / "out" / "1_sat.jpg"
    src.parent.mkdir()
    src.write_bytes(b"scene")
    flaky = FlakyOnce(integrity.verified_move, ConnectionResetError("connection reset by peer"))
    monkeypatch.setattr(integrity, "verified_move", flaky)
    move = tasks.move_files.with_options(retry_delay_seconds=0)

    @flow
    def run() -> int:
        return move([(str(src), str(dst))])

    assert run() == 1
    assert flaky.calls == 2
    assert dst.read_bytes() == b"scene" and not src.exists()


@pytest.mark.parametrize(
    "error", [BadInputError("/x/1_sat.jpg", "not an image"), ValueError("bad option")]
)
def test_non_transient_errors_are_not_retried(prefect_harness: None, error: Exception) -> None:
    calls = []

    @task(**{**storage_retry_options(), "retry_delay_seconds": 0, "cache_policy": NO_CACHE})
    def fails() -> None:
        calls.append(1)
        raise error

    @flow
    def run() -> None:
        fails()

    with pytest.raises(type(error)):
        run()
    assert len(calls) == 1
