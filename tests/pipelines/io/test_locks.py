"""One holder at a time, stale locks taken over, and one never releases another's lock."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.io import storage
from pipelines.io.locks import LockHeldError, holder, lock

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["local", "gcs"])
def lock_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "locks" / "raw.lock")
    return f"{request.getfixturevalue('gcs_root')}/locks/raw.lock"


def test_lock_is_held_inside_and_released_after(lock_uri: str) -> None:
    with lock(lock_uri, "drop-42", ttl_s=60) as lease:
        assert lease.owner == "drop-42"
        stored = holder(lock_uri)
        assert stored is not None
        assert (stored.owner, stored.token) == ("drop-42", lease.token)
        assert time.time() < stored.expires_at <= time.time() + 60
    assert holder(lock_uri) is None
    assert not storage.exists(lock_uri)


def test_a_held_lock_refuses_a_second_holder(lock_uri: str) -> None:
    with lock(lock_uri, "drop-42", ttl_s=60) as lease:
        with (
            pytest.raises(LockHeldError, match="locked by 'drop-42' until") as caught,
            lock(lock_uri, "nightly", ttl_s=60),
        ):
            pytest.fail("two holders")
        assert caught.value.owner == "drop-42"
        assert caught.value.expires_at == pytest.approx(lease.expires_at)
        assert holder(lock_uri).owner == "drop-42"  # type: ignore[union-attr]


def test_lock_is_released_when_the_block_raises(lock_uri: str) -> None:
    with pytest.raises(RuntimeError), lock(lock_uri, "a", ttl_s=60):
        raise RuntimeError("boom")
    with lock(lock_uri, "b", ttl_s=60):
        pass


def test_stale_lock_is_taken_over_and_its_late_release_keeps_the_new_lock(lock_uri: str) -> None:
    with contextlib.ExitStack() as crashed:
        crashed.enter_context(lock(lock_uri, "crashed-run", ttl_s=0.2))
        time.sleep(0.4)  # its holder stopped renewing: the lease is past its expiry
        with lock(lock_uri, "next-run", ttl_s=60) as lease:
            crashed.close()  # the overrunning holder finally exits and releases
            stored = holder(lock_uri)
            assert stored is not None and stored.token == lease.token  # still next-run's
    assert holder(lock_uri) is None


def test_wait_acquires_once_the_holder_releases(tmp_path: Path) -> None:
    uri = str(tmp_path / "x.lock")
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock(uri, "first", ttl_s=60):
            taken.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(5)
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    with lock(uri, "second", ttl_s=60, wait_s=10, poll_s=0.05) as lease:
        assert lease.owner == "second"
        assert time.monotonic() - started >= 0.25
    thread.join()


def test_wait_gives_up_with_lock_held_error(tmp_path: Path) -> None:
    uri = str(tmp_path / "x.lock")
    with lock(uri, "first", ttl_s=60):
        started = time.monotonic()
        with pytest.raises(LockHeldError, match="first"), lock(uri, "2nd", 60, wait_s=0.3):
            pass
        assert 0.25 <= time.monotonic() - started < 5


def test_unreadable_lock_object_is_never_taken_over(tmp_path: Path) -> None:
    uri = tmp_path / "x.lock"
    uri.write_text("not a lease")
    with (
        pytest.raises(LockHeldError, match=r"unreadable lock object.*removed by hand"),
        lock(str(uri), "a", ttl_s=60),
    ):
        pass
    assert uri.read_text() == "not a lease"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ttl_s must be positive"), lock("/tmp/x", "a", 0):
        pass
    with pytest.raises(ValueError, match="local paths and gs:// only"), lock("s3://b/x", "a", 1):
        pass


# --- real processes racing (local; the emulator ignores preconditions, see test_integrity) --

CONTENDER = """
import sys, time
from pipelines.io.locks import LockHeldError, lock

uri, owner, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
time.sleep(max(0.0, start_at - time.time()))
try:
    with lock(uri, owner, ttl_s=60):
        print("won", flush=True)
        time.sleep(1.5)  # hold long enough for every contender to try
except LockHeldError:
    print("held", flush=True)
"""


@pytest.mark.slow
def test_processes_racing_for_a_fresh_or_a_stale_lock_have_exactly_one_winner(
    tmp_path: Path,
) -> None:
    script = tmp_path / "contender.py"
    script.write_text(CONTENDER)
    fresh, stale = str(tmp_path / "fresh.lock"), str(tmp_path / "stale.lock")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with contextlib.ExitStack() as crashed:
        crashed.enter_context(lock(stale, "crashed-run", ttl_s=0.5))  # expires before the race
        start_at = time.time() + 3.0
        procs = {
            (uri, i): subprocess.Popen(
                [sys.executable, str(script), uri, f"p{i}", str(start_at)],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for uri in (fresh, stale)
            for i in range(6)
        }
        results = {key: proc.communicate(timeout=120)[0].strip() for key, proc in procs.items()}
    for uri in (fresh, stale):
        outcomes = sorted(results[(uri, i)] for i in range(6))
        assert outcomes == ["held"] * 5 + ["won"], (uri, outcomes)
        assert holder(uri) is None  # the winner released; the crashed run's late exit did not fail
