"""One holder at a time: a lease object beside the thing it guards, for runs that may overlap.

Two drop events for one root, or nightly inference overlapping a drop-triggered run, must not
process the same thing twice. ``with lock(uri, owner, ttl_s):`` creates the lock object
create-only (local: a hard link that fails if the name exists; GCS: ``if_generation_match=0``)
holding the owner and an expiry. A lock past its expiry (its holder crashed) is taken over by
compare-and-swap: on GCS ``if_generation_match=<the stale generation>``; locally an
``os.replace`` done only if the file still holds the stale bytes, checked under an ``flock``
the kernel drops when a process dies. Release deletes the lock only while it is still one's
own, so a holder that overran its lease never removes its successor's.

Expiry is wall-clock time: hosts sharing a lock need synchronised clocks, and ``ttl_s`` must
exceed the longest run (or the holder must finish before others may take over).

Only the standard library is imported up front (the GCS client loads on first ``gs://`` use),
so taking a local lock is cheap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


class LockHeldError(Exception):
    """Someone else holds the lock; says who and until when."""

    def __init__(self, uri: str, owner: str, expires_at: float) -> None:
        self.uri, self.owner, self.expires_at = uri, owner, expires_at
        until = (
            datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
            if expires_at < float("inf")
            else "it is removed by hand"
        )
        super().__init__(f"{uri} is locked by {owner!r} until {until}")


@dataclass(frozen=True)
class Lease:
    """The lock one holds: who, a unique token, and when it expires (epoch seconds)."""

    uri: str
    owner: str
    token: str
    expires_at: float

    def payload(self) -> bytes:
        body = {"owner": self.owner, "token": self.token, "expires_at": self.expires_at}
        return json.dumps(body, sort_keys=True).encode("utf-8")


def _parse(uri: str, data: bytes) -> Lease | None:
    """The lease a lock object holds; None when it is not one of ours (unreadable)."""
    try:
        body = json.loads(data)
        return Lease(uri, str(body["owner"]), str(body["token"]), float(body["expires_at"]))
    except (ValueError, KeyError, TypeError):
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


def _try_acquire(backend: _Backend, uri: str, owner: str, ttl_s: float) -> tuple[Lease, _Seen]:
    """One attempt: create, or take over a stale lock; LockHeldError when it is live."""
    for _ in range(5):  # the lock may vanish or change between reads: look again
        lease = Lease(uri, owner, uuid.uuid4().hex, time.time() + ttl_s)
        created = backend.create(lease.payload())
        if created is not None:
            return lease, created
        seen = backend.read()
        if seen is None:
            continue
        held = _parse(uri, seen.data)
        if held is None:
            raise LockHeldError(uri, "an unreadable lock object", float("inf"))
        if held.expires_at > time.time():
            raise LockHeldError(uri, held.owner, held.expires_at)
        taken = backend.replace_if(seen, lease.payload())
        if taken is not None:
            return lease, taken
    seen = backend.read()
    held = _parse(uri, seen.data) if seen is not None else None
    raise LockHeldError(uri, held.owner if held else "a contender", held.expires_at if held else 0)


@contextlib.contextmanager
def lock(
    uri: str, owner: str, ttl_s: float, *, wait_s: float = 0.0, poll_s: float = 0.5
) -> Iterator[Lease]:
    """Hold the lock at ``uri`` for the ``with`` block; raise LockHeldError if another has it.

    ``wait_s`` > 0 polls every ``poll_s`` seconds until the lock is free or stale, then gives
    up with LockHeldError. The lock is released on exit, exceptions included, unless it was
    taken over meanwhile (a lease that expired is no longer one's own).
    """
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
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
    try:
        yield lease
    finally:
        backend.delete_if(seen)


def holder(uri: str) -> Lease | None:
    """The lease at ``uri`` as stored (expired or not); None when no lock or an unreadable one."""
    seen = _backend(uri).read()
    return _parse(uri, seen.data) if seen is not None else None
