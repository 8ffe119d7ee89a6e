"""One holder at a time: a short lease beside the thing it guards, kept alive by a heartbeat.

Two drop events for one root, or nightly inference overlapping a drop-triggered run, must not
process the same thing twice, and a run that was killed must not block the next one for hours.
``with lock(uri, owner) as held:`` creates the lock object create-only (local: a hard link that
fails if the name exists; GCS: ``if_generation_match=0``) holding the owner, a unique token, a
short expiry (:data:`DEFAULT_LEASE_S`) and the holder's identity: host name, boot id, PID
namespace, pid and the process's start time (from ``/proc/<pid>/stat``). A daemon thread renews
the lease every ``renew_s`` (a third of the lease) by compare-and-swap, so a long run keeps its
lock however long it takes, and a killed one stops renewing.

A lock is taken over, again by compare-and-swap, when

- its lease lapsed (the holder stopped renewing: killed, frozen, or cut off), or
- its holder is provably dead: it ran on this host (same host name, boot id and PID namespace)
  and its pid is gone, a zombie, or now a different process (another start time: pid reused).

A holder on another host, or one whose liveness cannot be read, is judged by its lease alone.
The swap is race-free: on GCS ``if_generation_match=<the generation read>``; locally an
``os.replace`` done only if the file still holds the bytes read, checked under an ``flock`` the
kernel drops when a process dies. So of several contenders exactly one wins a takeover.

A renewal that finds the lock no longer its own (it was taken over after a lapse) marks the hold
lost: :meth:`HeldLock.check` raises :class:`LockLostError`, for callers to stop before their
next side effect. Release deletes the lock only while it is still one's own, so a holder that
overran its lease never removes its successor's.

Expiry is wall-clock time: hosts sharing a lock need clocks in step to well under the margin a
renewal leaves (lease minus renewal interval: 40 s with the defaults).

Only the standard library is imported up front (the GCS client loads on first ``gs://`` use),
so taking a local lock is cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

# A lease this short lets the next run take over a killed run's lock within a minute; the
# heartbeat renews it every third of it, so two renewals may fail before it lapses.
DEFAULT_LEASE_S = 60.0
RENEWALS_PER_LEASE = 3

logger = logging.getLogger("landcover.locks")


class LockHeldError(Exception):
    """Someone else holds the lock; says who, where and until when."""

    def __init__(
        self, uri: str, owner: str, expires_at: float, *, host: str = "", pid: int | None = None
    ) -> None:
        self.uri, self.owner, self.expires_at = uri, owner, expires_at
        self.host, self.pid = host, pid
        until = (
            datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
            if expires_at < float("inf")
            else "it is removed by hand"
        )
        where = f" (pid {pid} on {host})" if pid is not None and host else ""
        super().__init__(f"{uri} is locked by {owner!r}{where} until {until}")


class LockLostError(RuntimeError):
    """The lease lapsed and another run took the lock over: stop before the next side effect."""


@dataclass(frozen=True)
class HostIdentity:
    """What makes a pid meaningful: one kernel (boot) and one PID namespace on one host."""

    hostname: str
    boot_id: str | None
    pid_namespace: str | None


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def this_host() -> HostIdentity:
    """This process's host identity (boot id and PID namespace are None where there is no /proc)."""
    try:
        namespace: str | None = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = None
    return HostIdentity(socket.gethostname(), _read("/proc/sys/kernel/random/boot_id"), namespace)


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot), or None when it is not running.

    A zombie (killed, not yet reaped by its parent) is not running. Field 22 of
    ``/proc/<pid>/stat``, read after the command name's closing parenthesis (which may itself
    hold spaces or parentheses).
    """
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Lease:
    """A lock as stored: who holds it, a unique token, when it lapses, and the holder's process."""

    uri: str
    owner: str
    token: str
    expires_at: float
    host: str = ""
    boot_id: str | None = None
    pid_namespace: str | None = None
    pid: int | None = None
    pid_start: int | None = None

    def payload(self) -> bytes:
        body = dataclasses.asdict(self)
        del body["uri"]
        return json.dumps(body, sort_keys=True).encode("utf-8")

    def renewed(self, ttl_s: float) -> Lease:
        return dataclasses.replace(self, expires_at=time.time() + ttl_s)


def new_lease(uri: str, owner: str, ttl_s: float) -> Lease:
    """A fresh lease for this process."""
    me, pid = this_host(), os.getpid()
    return Lease(
        uri,
        owner,
        uuid.uuid4().hex,
        time.time() + ttl_s,
        host=me.hostname,
        boot_id=me.boot_id,
        pid_namespace=me.pid_namespace,
        pid=pid,
        pid_start=process_start(pid),
    )


def holder_is_dead(lease: Lease, here: HostIdentity | None = None) -> bool:
    """True only when the holder provably no longer runs: same host, boot and PID namespace,
    and its pid gone, a zombie, or another process (start time differs). Else False."""
    here = here or this_host()
    if lease.pid is None or lease.boot_id is None or lease.pid_namespace is None:
        return False
    if (lease.host, lease.boot_id, lease.pid_namespace) != (
        here.hostname,
        here.boot_id,
        here.pid_namespace,
    ):
        return False
    started = process_start(lease.pid)
    return started is None or (lease.pid_start is not None and started != lease.pid_start)


def _parse(uri: str, data: bytes) -> Lease | None:
    """The lease a lock object holds; None when it is not one of ours (unreadable)."""
    try:
        body = json.loads(data)
        pid, start = body.get("pid"), body.get("pid_start")
        return Lease(
            uri,
            str(body["owner"]),
            str(body["token"]),
            float(body["expires_at"]),
            host=str(body.get("host") or ""),
            boot_id=body.get("boot_id"),
            pid_namespace=body.get("pid_namespace"),
            pid=None if pid is None else int(pid),
            pid_start=None if start is None else int(start),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class _Seen:
    """A lock object as read: its bytes and (GCS) generation, the compare half of a CAS."""

    data: bytes
    generation: int | None


class _Backend(Protocol):
    def create(self, data: bytes) -> _Seen | None: ...
    def read(self) -> _Seen | None: ...
    def replace_if(self, seen: _Seen, data: bytes) -> _Seen | None: ...
    def delete_if(self, seen: _Seen) -> bool: ...


class _LocalBackend:
    def __init__(self, path: str) -> None:
        self.path = path

    def _write_temp(self, data: bytes) -> str:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = f"{self.path}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialise check-then-swap among processes; released by the kernel if one dies."""
        with open(f"{self.path}.guard", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def create(self, data: bytes) -> _Seen | None:
        tmp = self._write_temp(data)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return None
        finally:
            os.remove(tmp)
        return _Seen(data, None)

    def read(self) -> _Seen | None:
        try:
            with open(self.path, "rb") as handle:
                return _Seen(handle.read(), None)
        except FileNotFoundError:
            return None

    def replace_if(self, seen: _Seen, data: bytes) -> _Seen | None:
        tmp = self._write_temp(data)
        try:
            with self._guard():
                current = self.read()
                if current is None or current.data != seen.data:
                    return None
                os.replace(tmp, self.path)
                return _Seen(data, None)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)

    def delete_if(self, seen: _Seen) -> bool:
        with self._guard():
            current = self.read()
            if current is None or current.data != seen.data:
                return False
            os.remove(self.path)
            return True


class _GcsBackend:
    """Generation preconditions; the reads before each write give the same answers on emulators
    that ignore preconditions (where only the race protection is lost)."""

    def __init__(self, uri: str) -> None:
        from google.api_core import exceptions

        from pipelines.io.integrity import gcs_blob

        self.blob = gcs_blob(uri)
        self.conflicts = (exceptions.PreconditionFailed, exceptions.NotFound)

    def create(self, data: bytes) -> _Seen | None:
        if self.blob.exists():
            return None
        try:
            self.blob.upload_from_string(data, if_generation_match=0)
        except self.conflicts:
            return None
        return _Seen(data, int(self.blob.generation))

    def read(self) -> _Seen | None:
        found: Any = self.blob.bucket.get_blob(self.blob.name)
        if found is None:
            return None
        generation = int(found.generation)  # before the download, which refreshes properties
        try:
            data = found.download_as_bytes(if_generation_match=generation)
        except self.conflicts:
            return None  # changed or gone between metadata and content: the caller retries
        return _Seen(data, generation)

    def replace_if(self, seen: _Seen, data: bytes) -> _Seen | None:
        current = self.read()
        if current is None or current.generation != seen.generation:
            return None
        try:
            self.blob.upload_from_string(data, if_generation_match=seen.generation)
        except self.conflicts:
            return None
        return _Seen(data, int(self.blob.generation))

    def delete_if(self, seen: _Seen) -> bool:
        current = self.read()
        if current is None or current.data != seen.data:
            return False
        try:
            self.blob.delete(if_generation_match=seen.generation)
        except self.conflicts:
            return False
        return True


def _backend(uri: str) -> _Backend:
    if uri.startswith("gs://"):
        return _GcsBackend(uri)
    if "://" in uri:
        raise ValueError(f"locks support local paths and gs:// only, not {uri}")
    return _LocalBackend(uri)


def _held_error(uri: str, held: Lease) -> LockHeldError:
    return LockHeldError(uri, held.owner, held.expires_at, host=held.host, pid=held.pid)


def _try_acquire(backend: _Backend, uri: str, owner: str, ttl_s: float) -> tuple[Lease, _Seen]:
    """One attempt: create, or take over a lapsed or dead holder's lock; LockHeldError else."""
    for _ in range(5):  # the lock may vanish or change between reads: look again
        lease = new_lease(uri, owner, ttl_s)
        created = backend.create(lease.payload())
        if created is not None:
            return lease, created
        seen = backend.read()
        if seen is None:
            continue
        held = _parse(uri, seen.data)
        if held is None:
            raise LockHeldError(uri, "an unreadable lock object", float("inf"))
        lapsed = held.expires_at <= time.time()
        if not lapsed and not holder_is_dead(held):
            raise _held_error(uri, held)
        taken = backend.replace_if(seen, lease.payload())
        if taken is not None:
            why = "its lease lapsed" if lapsed else f"its holder (pid {held.pid}) is dead"
            logger.warning("took over %s from %r: %s", uri, held.owner, why)
            return lease, taken
    seen = backend.read()
    held = _parse(uri, seen.data) if seen is not None else None
    if held is None:
        raise LockHeldError(uri, "a contender", 0)
    raise _held_error(uri, held)


class HeldLock:
    """A lock this process holds, renewed by a daemon thread until :meth:`release`.

    ``owner``, ``token`` and ``expires_at`` read the current lease (``expires_at`` moves with
    each renewal). ``lost`` is set once a renewal found the lock taken over.
    """

    def __init__(self, backend: _Backend, lease: Lease, seen: _Seen, ttl_s: float) -> None:
        self._backend, self._lease, self._seen, self.ttl_s = backend, lease, seen, ttl_s
        self._mutex = threading.Lock()  # one renewal or release at a time on this backend
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def lease(self) -> Lease:
        return self._lease

    @property
    def uri(self) -> str:
        return self._lease.uri

    @property
    def owner(self) -> str:
        return self._lease.owner

    @property
    def token(self) -> str:
        return self._lease.token

    @property
    def expires_at(self) -> float:
        return self._lease.expires_at

    def renew(self) -> bool:
        """Extend the lease by compare-and-swap; False (and ``lost`` set) if it is not ours."""
        with self._mutex:
            if self.lost.is_set():
                return False
            fresh = self._lease.renewed(self.ttl_s)
            swapped = self._backend.replace_if(self._seen, fresh.payload())
            if swapped is None:
                current = self._backend.read()
                stored = _parse(self.uri, current.data) if current is not None else None
                if current is None or stored is None or stored.token != self._lease.token:
                    self.lost.set()
                    logger.error("lost the lock %s: it was taken over after a lapse", self.uri)
                    return False
                swapped = self._backend.replace_if(current, fresh.payload())
                if swapped is None:
                    return False  # changed between the two reads: the next beat looks again
            self._lease, self._seen = fresh, swapped
            return True

    def check(self) -> None:
        """Raise :class:`LockLostError` if the lock was taken over (call before side effects)."""
        if self.lost.is_set():
            raise LockLostError(f"{self.uri} was taken over: this run no longer holds it")

    def start_heartbeat(self, every_s: float) -> None:
        def beat() -> None:
            while not self._stop.wait(every_s):
                try:
                    if not self.renew() and self.lost.is_set():
                        return
                except Exception:  # a storage hiccup: the next beat tries again
                    logger.warning("renewing %s failed; retrying", self.uri, exc_info=True)

        self._thread = threading.Thread(target=beat, name=f"lease {self.uri}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and delete the lock if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._mutex:
            self._backend.delete_if(self._seen)


@contextlib.contextmanager
def lock(
    uri: str,
    owner: str,
    ttl_s: float = DEFAULT_LEASE_S,
    *,
    wait_s: float = 0.0,
    poll_s: float = 0.5,
    renew_s: float | None = None,
) -> Iterator[HeldLock]:
    """Hold the lock at ``uri`` for the ``with`` block; raise LockHeldError if another has it.

    ``ttl_s`` is the lease, renewed every ``renew_s`` seconds (default: a third of it) while
    the block runs; ``renew_s=0`` never renews (the lease then lapses after ``ttl_s``).
    ``wait_s`` > 0 polls every ``poll_s`` seconds until the lock is free, lapsed or its holder
    dead, then gives up with LockHeldError. The lock is released on exit, exceptions included,
    unless it was taken over meanwhile.
    """
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    every = ttl_s / RENEWALS_PER_LEASE if renew_s is None else renew_s
    if every < 0 or every >= ttl_s:
        raise ValueError(f"renew_s must be in [0, ttl_s), got {renew_s} for ttl_s={ttl_s}")
    backend = _backend(uri)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            lease, seen = _try_acquire(backend, uri, owner, ttl_s)
            break
        except LockHeldError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise
            time.sleep(min(poll_s, remaining))
    held = HeldLock(backend, lease, seen, ttl_s)
    if every > 0:
        held.start_heartbeat(every)
    try:
        yield held
    finally:
        held.release()


def holder(uri: str) -> Lease | None:
    """The lease at ``uri`` as stored (expired or not); None when no lock or an unreadable one."""
    seen = _backend(uri).read()
    return _parse(uri, seen.data) if seen is not None else None
