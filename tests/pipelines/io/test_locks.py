"""One holder at a time; lapsed leases and dead holders taken over, live ones never; the
heartbeat keeps a long run's lock; one never releases another's lock."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipelines.io import locks, storage
from pipelines.io.locks import LockHeldError, LockLostError, holder, lock

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
            pytest.raises(
                LockHeldError, match=r"locked by 'drop-42' \(pid \d+ on .+\) until"
            ) as caught,
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
        # renew_s=0: no heartbeat, as if the holder were frozen; its process is alive (this one)
        crashed.enter_context(lock(lock_uri, "crashed-run", ttl_s=0.2, renew_s=0))
        time.sleep(0.4)  # its holder stopped renewing: the lease lapsed
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
    with pytest.raises(ValueError, match="renew_s must be in"), lock("/tmp/x", "a", 1, renew_s=1):
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
        # no heartbeat: its lease lapses before the race
        crashed.enter_context(lock(stale, "crashed-run", ttl_s=0.5, renew_s=0))
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


# --- leases, heartbeats and provably dead holders ---------------------------------------------

HOLDER = """
import sys, time
from pipelines.io.locks import lock

uri, ttl = sys.argv[1], float(sys.argv[2])
with lock(uri, "nightly-run", ttl_s=ttl):
    print("held", flush=True)
    time.sleep(600)
"""


def start_holder(tmp_path: Path, uri: str, ttl_s: float) -> subprocess.Popen[str]:
    """A real process that takes the lock, says so, and keeps it (heartbeat running)."""
    script = tmp_path / "holder.py"
    script.write_text(HOLDER)
    proc = subprocess.Popen(
        [sys.executable, str(script), uri, str(ttl_s)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


HERE = locks.this_host()


def elsewhere() -> locks.HostIdentity:
    """This process seen as another host: liveness can not be checked, only the lease."""
    return dataclasses.replace(HERE, hostname="another-host")


@pytest.mark.slow
def test_a_sigkilled_holder_is_taken_over_at_once_not_after_its_lease(
    lock_uri: str, tmp_path: Path
) -> None:
    proc = start_holder(tmp_path, lock_uri, ttl_s=6 * 3600)  # the old nightly lease
    stored = holder(lock_uri)
    assert stored is not None and stored.pid == proc.pid and stored.owner == "nightly-run"
    assert stored.host == locks.this_host().hostname and stored.pid_start is not None
    with pytest.raises(LockHeldError, match=rf"pid {proc.pid}"), lock(lock_uri, "next", 60):
        pass
    os.kill(proc.pid, signal.SIGKILL)  # no finally, no release: the lock object stays
    time.sleep(0.2)
    assert holder(lock_uri) is not None
    started = time.monotonic()
    with lock(lock_uri, "next-run", 60) as lease:  # the killed child is a zombie or gone
        assert time.monotonic() - started < 5
        assert holder(lock_uri).token == lease.token  # type: ignore[union-attr]
    proc.wait(timeout=10)


@pytest.mark.slow
def test_a_live_holder_keeps_its_lock_past_many_leases_and_lapses_once_killed(
    lock_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = start_holder(tmp_path, lock_uri, ttl_s=1.0)  # renewed every 1/3 s
    try:
        first = holder(lock_uri)
        time.sleep(3.0)  # three leases long
        with pytest.raises(LockHeldError, match="nightly-run"), lock(lock_uri, "next", 60):
            pass
        monkeypatch.setattr(locks, "this_host", elsewhere)  # judge by the lease alone
        with pytest.raises(LockHeldError, match="nightly-run"), lock(lock_uri, "next", 60):
            pass
        renewed = holder(lock_uri)
        assert first is not None and renewed is not None
        assert renewed.token == first.token and renewed.expires_at > first.expires_at + 2
    finally:
        os.kill(proc.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    with lock(lock_uri, "next-run", 60, wait_s=10, poll_s=0.05) as lease:
        # As another host sees it: no takeover before the last renewed lease lapsed (<= 1 s).
        assert 0.0 < time.monotonic() - killed_at < 3.0
        assert lease.owner == "next-run"
    proc.wait(timeout=10)


def test_the_heartbeat_keeps_a_long_runs_lock_and_without_it_the_lease_lapses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "long.lock")
    monkeypatch.setattr(locks, "this_host", elsewhere)  # contenders judge by the lease alone
    with lock(uri, "long-run", ttl_s=0.6) as held:  # renewed every 0.2 s
        expiries = []
        for _ in range(8):  # 2 s: more than three leases
            time.sleep(0.25)
            with pytest.raises(LockHeldError, match="long-run"), lock(uri, "contender", 60):
                pass
            expiries.append(holder(uri).expires_at)  # type: ignore[union-attr]
        assert expiries == sorted(expiries) and expiries[-1] - expiries[0] > 1.2
        assert not held.lost.is_set()
        held.check()
    with lock(uri, "unrenewed", ttl_s=0.6, renew_s=0) as frozen:
        time.sleep(0.8)
        with lock(uri, "contender", 60) as taker:
            assert not frozen.renew()  # its lease is someone else's now
            assert frozen.lost.is_set()
            with pytest.raises(LockLostError, match="taken over"):
                frozen.check()
        assert taker.owner == "contender"


def forge(uri: Path, **fields: object) -> None:
    """A lock object as another process would have written it, with this host's identity."""
    me = locks.this_host()
    body = {
        "owner": "forged",
        "token": "t",
        "expires_at": time.time() + 3600,
        "host": me.hostname,
        "boot_id": me.boot_id,
        "pid_namespace": me.pid_namespace,
        "pid": os.getpid(),
        "pid_start": locks.process_start(os.getpid()),
    }
    uri.write_text(json.dumps({**body, **fields}))


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_provably_dead_means_same_host_and_a_gone_or_reused_pid(tmp_path: Path) -> None:
    uri = tmp_path / "x.lock"
    forge(uri)  # this very process, alive: held
    with pytest.raises(LockHeldError, match="forged"), lock(str(uri), "next", 60):
        pass
    start = locks.process_start(os.getpid())
    assert start is not None
    forge(uri, pid_start=start + 1)  # the pid now belongs to another process: reused
    with lock(str(uri), "next", 60) as lease:
        assert lease.owner == "next"
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    gone = int(done.stdout)
    assert locks.process_start(gone) is None
    forge(uri, pid=gone)  # reaped, nothing runs under that pid
    with lock(str(uri), "next", 60):
        pass
    for other in ({"host": "another-host"}, {"boot_id": "another-boot"}, {"pid_namespace": "x"}):
        forge(uri, pid=gone, **other)  # dead there? not provable from here: the lease decides
        with pytest.raises(LockHeldError, match="forged"), lock(str(uri), "next", 60):
            pass
    uri.write_text(json.dumps({"owner": "old", "token": "t", "expires_at": time.time() + 60}))
    with pytest.raises(LockHeldError, match="old"), lock(str(uri), "next", 60):
        pass  # an old-format lock (no process recorded) is judged by its expiry
