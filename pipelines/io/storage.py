"""One storage layer for every stage: local paths and ``gs://`` URIs through Beam's FileSystems.

Beam's FileSystems already speaks both (and honours ``STORAGE_EMULATOR_HOST``), so the same
code runs on a laptop, in tests against a GCS emulator, and on Dataflow. TensorFlow's own
``gs://`` filesystem ignores emulator settings, so code that hands files to TF or Keras goes
through :func:`local_copy` / :func:`upload_file` here rather than passing ``gs://`` to TF.

**Names are literal.** Beam's ``FileSystems.match`` and ``FileSystems.delete`` read their
argument as a glob, so a scene named ``tile[1]`` or ``a*b`` would select other objects
(``tile1``…). Every exists, match and delete of a *name* goes through this module, which escapes
the name (:func:`literal`) or does not glob at all; only the wildcard a caller adds on purpose
(``*`` in :func:`list_files`, a suffix in :func:`match_in`) is a pattern. Callers never pass a
name to ``FileSystems.match``/``delete`` themselves (``tests/pipelines/io/test_storage.py``
greps the code for that).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.core.naming import basename

_CHUNK = 8 << 20
# The characters Beam's glob matching gives a meaning to; each is escaped as a one-char class.
_GLOB_CHARS = re.compile(r"([\[\]*?])")


def is_remote(uri: str) -> bool:
    """True for URIs with a scheme (``gs://…``); plain paths are local."""
    return "://" in uri


def join(base: str, *parts: str) -> str:
    """Join path parts the way the URI's filesystem does (``/`` for both local and gs)."""
    return FileSystems.join(base.rstrip("/") if base != "/" else base, *parts)


def read_bytes(uri: str) -> bytes:
    """Whole object; never decompresses (Beam's AUTO would gunzip a ``.gz`` behind our back)."""
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def read_text(uri: str) -> str:
    return read_bytes(uri).decode("utf-8")


def write_bytes(uri: str, data: bytes) -> None:
    """Write so that readers see the whole object or nothing.

    A GCS object becomes visible only when its upload finalizes, so a direct write is already
    atomic there; a local file is written beside its target and renamed into place.
    """
    if is_remote(uri):
        with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            handle.write(data)
        return
    os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    tmp = f"{uri}.tmp-{uuid.uuid4().hex}"
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, uri)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_text(uri: str, text: str) -> None:
    write_bytes(uri, text.encode("utf-8"))


def literal(uri: str) -> str:
    """``uri`` as a pattern that matches exactly that name: ``[``, ``]``, ``*``, ``?`` escaped.

    Beam's glob has no quoting, but a one-character class (``[[]``, ``[*]``) is literal.
    """
    return _GLOB_CHARS.sub(r"[\1]", uri)


def exists(uri: str) -> bool:
    """True when an object or folder of exactly this name exists (Beam's ``exists`` does not
    glob: ``os.path.exists`` locally, one object lookup on GCS)."""
    return FileSystems.exists(uri)


def match(pattern: str) -> list[str]:
    """Paths matching a glob, sorted; an empty list when nothing matches.

    ``pattern`` is a pattern: build it with :func:`match_in` (or :func:`literal`) so that the
    folder and name parts that come from data are literal.
    """
    results = FileSystems.match([pattern])
    return sorted(m.path for m in results[0].metadata_list)


def match_in(folder: str, name_glob: str) -> list[str]:
    """Files directly in ``folder`` (taken literally, whatever it is called) whose names match
    ``name_glob`` (the caller's own wildcard, e.g. ``*_sat.*``), sorted."""
    return match(join(literal(folder), name_glob))


def list_files(prefix: str) -> list[str]:
    """Every file under a folder-like prefix (recursively for gs, one level for local)."""
    return match_in(prefix, "*")


def list_with_sizes(prefix: str) -> list[tuple[str, int]]:
    """Files directly under ``prefix`` as (name relative to prefix, size in bytes), sorted.

    One listing call: names and sizes together are enough to fingerprint a folder's contents.
    """
    base = prefix.rstrip("/") + "/"
    rows = []
    for meta in FileSystems.match([join(literal(prefix), "*")])[0].metadata_list:
        name = meta.path[len(base) :] if meta.path.startswith(base) else basename(meta.path)
        rows.append((name, int(meta.size_in_bytes)))
    return sorted(rows)


def size_of(uri: str) -> int | None:
    """The size in bytes of exactly this object, or None when there is none (no globbing)."""
    if not is_remote(uri):
        return os.path.getsize(uri) if os.path.isfile(uri) else None
    for meta in FileSystems.match([literal(uri)])[0].metadata_list:
        if meta.path == uri:
            return int(meta.size_in_bytes)
    return None


def modified_time(uri: str) -> float | None:
    """When an object was last written (POSIX seconds), or None when the filesystem does not say.

    Exact-name lookup (the name is escaped, so ``[`` or ``*`` in it select nothing else).
    """
    for meta in FileSystems.match([literal(uri)])[0].metadata_list:
        if meta.path == uri:
            return float(meta.last_updated_in_seconds) if meta.last_updated_in_seconds else None
    return None


def delete(uris: list[str]) -> None:
    """Delete exactly these objects (a local folder with its contents); absent ones are skipped.

    Never globs: Beam's ``FileSystems.delete`` would read ``tile[1].done.json`` as a pattern
    and delete ``tile1.done.json``. Locally each path is removed itself; on GCS the name is
    escaped (:func:`literal`) and only an object of exactly that name is deleted; a name
    ending in ``/`` is a prefix, deleted with everything under it.
    """
    for uri in uris:
        if not is_remote(uri):
            if os.path.isdir(uri) and not os.path.islink(uri):
                shutil.rmtree(uri)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(uri)
            continue
        if uri.endswith("/"):  # a gs:// prefix: Beam deletes it by listing the prefix (no glob)
            FileSystems.delete([uri])
        elif FileSystems.exists(uri):
            FileSystems.delete([literal(uri)])


def copy_file(src: str, dst: str) -> None:
    """Copy one object across any two filesystems (local↔gs included), streamed in chunks."""
    if not is_remote(dst):
        os.makedirs(os.path.dirname(os.path.abspath(dst)), exist_ok=True)
    with (
        FileSystems.open(src, compression_type=CompressionTypes.UNCOMPRESSED) as reader,
        FileSystems.create(dst, compression_type=CompressionTypes.UNCOMPRESSED) as writer,
    ):
        while chunk := reader.read(_CHUNK):
            writer.write(chunk)


def upload_file(local_path: str, uri: str) -> None:
    """Publish a local file at ``uri`` atomically (see :func:`write_bytes`)."""
    if is_remote(uri):
        copy_file(local_path, uri)
        return
    if os.path.abspath(local_path) == os.path.abspath(uri):
        return
    os.makedirs(os.path.dirname(os.path.abspath(uri)), exist_ok=True)
    tmp = f"{uri}.tmp-{uuid.uuid4().hex}"
    shutil.copyfile(local_path, tmp)
    os.replace(tmp, uri)


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path holding ``uri``'s bytes, for libraries that only read local files."""
    if not is_remote(uri):
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="landcover-") as tmp:
        path = os.path.join(tmp, basename(uri))
        copy_file(uri, path)
        yield path


def check_readable_root(uri: str) -> None:
    """Fail early and clearly on a wrong input root (missing folder or bucket).

    Raises FileNotFoundError naming the URI; matching inside a missing bucket otherwise
    surfaces as an opaque 404 from deep inside the client library.
    """
    try:
        if not is_remote(uri):
            if not os.path.isdir(uri):
                raise FileNotFoundError(f"input folder does not exist: {uri}")
            return
        FileSystems.match([join(literal(uri), "*")], limits=[1])
    except FileNotFoundError:
        raise
    except Exception as exc:  # client errors vary by scheme: name the URI, keep the cause
        raise FileNotFoundError(f"cannot read {uri}: {type(exc).__name__}: {exc}") from exc
