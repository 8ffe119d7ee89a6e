"""Moves and writes that never lose or silently replace data: verify, then delete; create-only.

Every move is copy → re-read and compare size and sha256 → delete the source, so a crash at
any point leaves the source, or both copies, never neither. A destination that already holds
the same bytes makes a re-delivered move idempotent; different bytes raise
:class:`ConflictError` and nothing is overwritten (the caller quarantines). Deletes here never go
through Beam's glob-matching delete, so a name can only ever select itself.

Local and ``gs://`` behave alike. On GCS, create-only writes use the object generation
precondition ``if_generation_match=0`` (the one thing Beam's FileSystems cannot express), via
:func:`gcs_blob`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from typing import IO, Any

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.core.provenance import OutputRecord
from pipelines.core.uris import confine, same_or_inside
from pipelines.io import storage

# Streamed reads hold one chunk at a time; 1 MiB keeps hashing fast without a big buffer.
_CHUNK = 1 << 20


class ConflictError(Exception):
    """The destination already holds different content; nothing was overwritten."""

    def __init__(self, src: str, dst: str, src_sha256: str, dst_sha256: str) -> None:
        self.src, self.dst = src, dst
        self.src_sha256, self.dst_sha256 = src_sha256, dst_sha256
        super().__init__(
            f"{dst} already exists with different content (sha256 {dst_sha256[:12]}…, "
            f"incoming {src} has {src_sha256[:12]}…); not overwritten"
        )


class AlreadyExistsError(FileExistsError):
    """A create-only write found the object already there."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        super().__init__(f"{uri} already exists; create-only write refused")


class IntegrityError(OSError):
    """A copy read back different from its source (the bad copy has been removed)."""


# --- GCS objects with preconditions -------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _gcs_client(emulator_host: str | None) -> Any:
    # Heavy, and only needed where a gs:// precondition is.
    from google.cloud import storage as gcs  # type: ignore[attr-defined]

    return gcs.Client()


def gcs_blob(uri: str) -> Any:
    """The ``google.cloud.storage`` Blob for a ``gs://bucket/name`` URI.

    The one place this package talks to the GCS client directly: for generation preconditions
    (create-only writes, compare-and-swap) that Beam's FileSystems cannot express. The client
    is cached per ``STORAGE_EMULATOR_HOST`` so tests against an emulator get their own.
    """
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    if not uri.startswith("gs://") or not bucket or not name:
        raise ValueError(f"not a gs://bucket/object URI: {uri}")
    return _gcs_client(os.environ.get("STORAGE_EMULATOR_HOST")).bucket(bucket).blob(name)


def _precondition_failed() -> type[Exception]:
    from google.api_core.exceptions import PreconditionFailed

    return PreconditionFailed


# --- checksums ----------------------------------------------------------------------------


def _open_read(uri: str) -> IO[bytes]:
    return FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED)


def digest_of(uri: str) -> tuple[int, str]:
    """(size in bytes, sha256 hex) of an object, streamed in chunks, never whole in memory."""
    digest, size = hashlib.sha256(), 0
    with _open_read(uri) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def sha256_of(uri: str) -> str:
    """sha256 hex of an object, streamed in chunks."""
    return digest_of(uri)[1]


# --- local helpers ------------------------------------------------------------------------


def _fsync_dir(path: str) -> None:
    """Make a rename or link in ``path`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _local_temp_beside(uri: str) -> Iterator[tuple[IO[bytes], str]]:
    """A temp file in ``uri``'s folder (same filesystem, so link/rename are atomic); removed."""
    folder = os.path.dirname(os.path.abspath(uri))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{uri}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "xb") as handle:
            yield handle, tmp
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _finish(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def delete_object(uri: str, *, if_generation_match: int | None = None) -> None:
    """Delete exactly this object (no globbing); an object already gone is not an error.

    Beam's ``FileSystems.delete`` matches its argument as a glob, so a name holding ``*`` or
    ``[`` could select other objects; this never can.
    """
    if storage.is_remote(uri):
        from google.api_core.exceptions import NotFound

        with contextlib.suppress(NotFound):
            gcs_blob(uri).delete(if_generation_match=if_generation_match)
        return
    with contextlib.suppress(FileNotFoundError):
        os.remove(uri)


# --- create-only and atomic writes --------------------------------------------------------


def write_new(uri: str, data: bytes | str) -> None:
    """Create ``uri`` with ``data``; AlreadyExistsError if anything is there already.

    Readers see the whole object or nothing. Local: a temp file hard-linked into place (the
    link fails if the name exists). GCS: ``if_generation_match=0``; an existence check first
    gives the same answer on emulators that ignore preconditions (races are then unguarded).
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if storage.is_remote(uri):
        blob = gcs_blob(uri)
        if blob.exists():
            raise AlreadyExistsError(uri)
        try:
            blob.upload_from_string(payload, if_generation_match=0)
        except _precondition_failed() as exc:
            raise AlreadyExistsError(uri) from exc
        return
    with _local_temp_beside(uri) as (handle, tmp):
        handle.write(payload)
        _finish(handle)
        try:
            os.link(tmp, uri)
        except FileExistsError as exc:
            raise AlreadyExistsError(uri) from exc
    _fsync_dir(os.path.dirname(os.path.abspath(uri)))


def atomic_write(uri: str, data: bytes | str) -> None:
    """Write or replace ``uri`` so that readers see the old or the new bytes, never a mix.

    Local: temp file, fsync, ``os.replace``. GCS: an object appears only when its upload
    finalizes, so one upload is already atomic.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if storage.is_remote(uri):
        storage.write_bytes(uri, payload)
        return
    with _local_temp_beside(uri) as (handle, tmp):
        handle.write(payload)
        _finish(handle)
        os.replace(tmp, uri)
    _fsync_dir(os.path.dirname(os.path.abspath(uri)))


# --- verified copies and moves ------------------------------------------------------------


def resolved_same_or_inside(a: str, b: str) -> bool:
    """:func:`pipelines.core.uris.same_or_inside` after resolving local paths (symlinks, cwd)."""

    def resolve(uri: str) -> str:
        return uri if storage.is_remote(uri) else os.path.realpath(uri)

    return same_or_inside(resolve(a), resolve(b))


def _copy_hashing(src: str, sink: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with _open_read(src) as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            sink.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _create_copy(src: str, dst: str) -> tuple[int, str, int | None]:
    """Copy ``src`` to a new ``dst`` (create-only); (size, sha256 of what was read, generation).

    Raises AlreadyExistsError if ``dst`` appeared meanwhile.
    """
    if storage.is_remote(dst):
        blob = gcs_blob(dst)
        if blob.exists():
            raise AlreadyExistsError(dst)
        with tempfile.NamedTemporaryFile(prefix="landcover-copy-") as spool:
            size, sha = _copy_hashing(src, spool)
            spool.flush()
            try:
                blob.upload_from_filename(spool.name, if_generation_match=0)
            except _precondition_failed() as exc:
                raise AlreadyExistsError(dst) from exc
        return size, sha, blob.generation
    with _local_temp_beside(dst) as (handle, tmp):
        size, sha = _copy_hashing(src, handle)
        _finish(handle)
        try:
            os.link(tmp, dst)
        except FileExistsError as exc:
            raise AlreadyExistsError(dst) from exc
    _fsync_dir(os.path.dirname(os.path.abspath(dst)))
    return size, sha, None


def verified_copy(src: str, dst: str) -> tuple[int, str]:
    """Copy ``src`` to ``dst`` and prove it: re-read ``dst``, compare size and sha256.

    Returns (size, sha256). A ``dst`` that already holds the same bytes is success (a
    re-delivery); different bytes raise :class:`ConflictError` and ``dst`` is left alone. A copy
    that reads back wrong is deleted and raises :class:`IntegrityError`.
    """
    if resolved_same_or_inside(src, dst) and resolved_same_or_inside(dst, src):
        raise ValueError(f"source and destination are the same object: {src}")
    if not storage.exists(src):
        raise FileNotFoundError(f"source to copy does not exist: {src}")
    try:
        size, sha, generation = _create_copy(src, dst)
    except AlreadyExistsError:
        return _compare_existing(src, dst)
    found_size, found_sha = digest_of(dst)
    if (found_size, found_sha) != (size, sha):
        delete_object(dst, if_generation_match=generation)
        raise IntegrityError(
            f"copy of {src} to {dst} read back as {found_size} bytes sha256 {found_sha[:12]}…, "
            f"expected {size} bytes sha256 {sha[:12]}…; the bad copy was removed"
        )
    return size, sha


def _compare_existing(src: str, dst: str) -> tuple[int, str]:
    src_size, src_sha = digest_of(src)
    dst_size, dst_sha = digest_of(dst)
    if (src_size, src_sha) != (dst_size, dst_sha):
        raise ConflictError(src, dst, src_sha, dst_sha)
    return dst_size, dst_sha


def verified_move(src: str, dst: str) -> tuple[int, str]:
    """:func:`verified_copy`, then delete ``src``; returns (size, sha256).

    Idempotent: moving again onto an identical ``dst`` only deletes ``src``. A different
    ``dst`` raises :class:`ConflictError` with ``src`` untouched, for the caller to quarantine.
    """
    result = verified_copy(src, dst)
    delete_object(src)
    return result


# --- checking a receipt's outputs ---------------------------------------------------------


def verify_outputs(record: OutputRecord, folder: str) -> list[str]:
    """Problems with the files ``record`` lists under ``folder``; empty when all are intact.

    Each problem is one line naming the file: missing, size differs, or checksum differs (a
    truncated or overwritten output). Names were validated when the record was parsed, and are
    confined to ``folder`` again here.
    """
    problems = []
    for name, expected in sorted(record.outputs.items()):
        uri = confine(folder, name)
        if not storage.exists(uri):
            problems.append(f"{name}: missing")
            continue
        size, sha = digest_of(uri)
        if size != expected.size:
            problems.append(f"{name}: size differs (expected {expected.size}, found {size})")
        elif sha != expected.sha256:
            problems.append(f"{name}: checksum differs (content changed since it was recorded)")
    return problems
