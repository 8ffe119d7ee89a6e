"""Datasets and models written whole, then switched: readers see the old or the new, never neither.

Layout under a root::

    root/versions/<version_id>/...   one complete dataset or model each (written, then left alone)
    root/CURRENT                     {"version": <version_id>, "published_at": ...}

A writer asks :func:`new_version` for a fresh folder, fills it (its completeness marker, e.g.
``manifest.json``, last), then :func:`publish` switches ``CURRENT`` with one atomic write.
Readers call :func:`resolve`. Nothing is deleted before its replacement is published;
:func:`prune` removes old versions later, never the current one nor one still being written.
A legacy root that holds its marker directly (pre-versions layout) resolves to itself.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from datetime import UTC, datetime, timedelta

from pipelines.io import storage
from pipelines.io.integrity import atomic_write

POINTER_FILE = "CURRENT"
VERSIONS_DIR = "versions"
MANIFEST_FILE = "manifest.json"
_TIME_FORMAT = "%Y%m%dT%H%M%S%fZ"
# 20250102T030405123456Z-1a2b3c4d: UTC time to the microsecond, then randomness. Sorting by
# the string sorts by creation time; two writers in the same microsecond still differ.
_VERSION_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")
# A version younger than this may still be being written by another process: never pruned.
DEFAULT_PRUNE_GRACE = timedelta(hours=6)


def _check_id(version_id: str) -> str:
    if not isinstance(version_id, str) or not _VERSION_ID.match(version_id):
        raise ValueError(f"not a version id: {version_id!r}")
    return version_id


def version_uri(root: str, version_id: str) -> str:
    """The folder of one version (the id is checked, so it cannot point elsewhere)."""
    return storage.join(root, VERSIONS_DIR, _check_id(version_id))


def created_at(version_id: str) -> datetime:
    """When a version was started, read back from its id."""
    return datetime.strptime(_check_id(version_id).split("-")[0], _TIME_FORMAT).replace(tzinfo=UTC)


def new_version(root: str, *, now: datetime | None = None) -> tuple[str, str]:
    """A fresh (version_id, folder URI) to write a complete version into; nothing is written."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    version_id = f"{moment.strftime(_TIME_FORMAT)}-{secrets.token_hex(4)}"
    return version_id, version_uri(root, version_id)


def publish(root: str, version_id: str, *, marker: str | None = MANIFEST_FILE) -> None:
    """Make ``version_id`` the one readers resolve to, with a single atomic pointer write.

    Refuses a version whose ``marker`` file is missing: writers write it last, so its absence
    means the version is incomplete (pass ``marker=None`` for contents without one).
    """
    folder = version_uri(root, version_id)
    if marker is not None and not storage.exists(storage.join(folder, marker)):
        raise FileNotFoundError(
            f"refusing to publish incomplete version {folder}: it has no {marker} yet"
        )
    pointer = {"version": version_id, "published_at": datetime.now(UTC).isoformat()}
    atomic_write(storage.join(root, POINTER_FILE), json.dumps(pointer, sort_keys=True))


def current_version(root: str) -> str | None:
    """The published version id, or None when the root has no pointer."""
    pointer_uri = storage.join(root, POINTER_FILE)
    if not storage.exists(pointer_uri):
        return None
    text = storage.read_text(pointer_uri)
    try:
        pointer = json.loads(text)
        return _check_id(pointer["version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{pointer_uri} is not a valid version pointer: {text[:200]!r}") from exc


def resolve(
    root: str,
    *,
    marker: str = MANIFEST_FILE,
    hint: str = "run `landcover preprocess` to write one",
) -> str:
    """The folder readers should use: the current version, or a legacy root itself.

    FileNotFoundError (saying what to run) when the root has neither a pointer nor its
    ``marker``, or when the pointer names a version that is gone.
    """
    version_id = current_version(root)
    if version_id is not None:
        folder = version_uri(root, version_id)
        if not storage.exists(storage.join(folder, marker)):
            raise FileNotFoundError(
                f"{root}/{POINTER_FILE} points at version {version_id}, but {folder} has no "
                f"{marker} (deleted?); publish another version or {hint}"
            )
        return folder
    if storage.exists(storage.join(root, marker)):
        return root
    raise FileNotFoundError(
        f"nothing published at {root}: no {POINTER_FILE} and no {marker}; {hint}"
    )


def list_versions(root: str) -> list[str]:
    """Every version id with a folder under ``root``, oldest first."""
    prefix = storage.join(root, VERSIONS_DIR)
    if not storage.is_remote(root):
        ids = set(os.listdir(prefix)) if os.path.isdir(prefix) else set()
    else:  # gs:// has no folders: versions show up as object-name prefixes
        base = prefix.rstrip("/") + "/"
        found = storage.match_in(prefix, "**")  # '*' stops at '/' on gs://
        ids = {uri[len(base) :].split("/", 1)[0] for uri in found}
    return sorted(i for i in ids if _VERSION_ID.match(i))


def prune(
    root: str,
    keep: int = 3,
    *,
    grace: timedelta = DEFAULT_PRUNE_GRACE,
    now: datetime | None = None,
) -> list[str]:
    """Delete all but the newest ``keep`` versions; returns the ids deleted, oldest first.

    Never deletes the current version, nor one started within ``grace`` (another process may
    still be writing it: unpublished is not the same as abandoned).
    """
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    current = current_version(root)
    cutoff = (now or datetime.now(UTC)) - grace
    versions = list_versions(root)
    doomed = [
        v
        for v in versions[: max(len(versions) - keep, 0)]
        if v != current and created_at(v) < cutoff
    ]
    for version_id in doomed:
        folder = version_uri(root, version_id)
        if storage.is_remote(folder):
            storage.delete([folder + "/"])  # Beam deletes a trailing-slash gs:// prefix recursively
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return doomed
