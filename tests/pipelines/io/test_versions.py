"""Versions are written whole, then switched: the root always resolves to a complete version."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.io import storage, versions

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["local", "gcs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "records")
    return str(request.getfixturevalue("gcs_root"))


def write_version(root: str, tag: str, *, now: datetime | None = None) -> str:
    """A complete version the way writers make one: shards first, manifest (the marker) last."""
    version_id, folder = versions.new_version(root, now=now)
    shards = {}
    for i in range(2):
        data = f"{tag}-{i}".encode() * 50
        storage.write_bytes(storage.join(folder, f"train-{i}.tfrecord"), data)
        shards[f"train-{i}.tfrecord"] = hashlib.sha256(data).hexdigest()
    storage.write_text(
        storage.join(folder, versions.MANIFEST_FILE), json.dumps({"tag": tag, "shards": shards})
    )
    return version_id


def assert_complete(folder: str) -> str:
    """The folder holds a manifest and every shard it lists, intact; returns its tag."""
    manifest = json.loads(storage.read_text(storage.join(folder, versions.MANIFEST_FILE)))
    for name, digest in manifest["shards"].items():
        data = storage.read_bytes(storage.join(folder, name))
        assert hashlib.sha256(data).hexdigest() == digest, f"{folder}/{name} is damaged"
    return str(manifest["tag"])


def test_new_version_ids_sort_by_time_and_are_unique(tmp_path: Path) -> None:
    moment = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    ids = {versions.new_version(str(tmp_path), now=moment)[0] for _ in range(500)}
    assert len(ids) == 500
    later, uri = versions.new_version(str(tmp_path), now=moment + timedelta(microseconds=1))
    assert all(i < later for i in ids)
    assert uri == str(tmp_path / "versions" / later)
    assert versions.created_at(later) == moment + timedelta(microseconds=1)
    assert not os.path.exists(uri)  # asking for a version writes nothing


@pytest.mark.parametrize("bad", ["../escape", "latest", "", "20250102T030405123456Z-xyz"])
def test_version_ids_are_checked(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a version id"):
        versions.version_uri(str(tmp_path), bad)


def test_publish_then_resolve(root: str) -> None:
    first = write_version(root, "first")
    versions.publish(root, first)
    assert versions.resolve(root) == versions.version_uri(root, first)
    second = write_version(root, "second")
    assert assert_complete(versions.resolve(root)) == "first"  # written but not yet switched
    versions.publish(root, second)
    assert assert_complete(versions.resolve(root)) == "second"
    pointer = json.loads(storage.read_text(storage.join(root, "CURRENT")))
    assert pointer["version"] == second
    datetime.fromisoformat(pointer["published_at"])


def test_publish_refuses_an_incomplete_version(root: str) -> None:
    version_id, folder = versions.new_version(root)
    storage.write_bytes(storage.join(folder, "train-0.tfrecord"), b"x")
    with pytest.raises(FileNotFoundError, match=r"incomplete version .* no manifest\.json"):
        versions.publish(root, version_id)
    assert not storage.exists(storage.join(root, "CURRENT"))
    versions.publish(root, version_id, marker=None)  # contents without a marker, by choice
    assert versions.current_version(root) == version_id


def test_legacy_root_resolves_to_itself(root: str) -> None:
    storage.write_text(storage.join(root, "manifest.json"), "{}")
    assert versions.resolve(root) == root


def test_resolve_with_nothing_says_what_to_run(root: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"no CURRENT and no manifest\.json.*landcover"):
        versions.resolve(root)
    with pytest.raises(FileNotFoundError, match=r"no model\.keras; run `landcover train`"):
        versions.resolve(root, marker="model.keras", hint="run `landcover train`")


def test_resolve_names_a_pointer_to_a_vanished_version(tmp_path: Path) -> None:
    root = str(tmp_path)
    version_id = write_version(root, "gone")
    versions.publish(root, version_id)
    os.remove(os.path.join(versions.version_uri(root, version_id), "manifest.json"))
    with pytest.raises(FileNotFoundError, match=f"points at version {version_id}"):
        versions.resolve(root)


def test_garbled_pointer_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "CURRENT").write_text('{"version": "../../etc"')
    with pytest.raises(ValueError, match="not a valid version pointer"):
        versions.resolve(str(tmp_path))


def test_prune_keeps_newest_current_and_young_versions(root: str) -> None:
    now = datetime.now(UTC)
    old = [write_version(root, f"v{i}", now=now - timedelta(days=10 - i)) for i in range(5)]
    versions.publish(root, old[1])
    young = write_version(root, "being-written", now=now - timedelta(minutes=5))
    ids = versions.list_versions(root)
    assert ids == [*old, young]

    deleted = versions.prune(root, keep=2, grace=timedelta(hours=1), now=now)
    # Newest two (old[4], young) stay; old[1] is current; the rest go.
    assert deleted == [old[0], old[2], old[3]]
    assert versions.list_versions(root) == [old[1], old[4], young]
    assert assert_complete(versions.resolve(root)) == "v1"

    # A young unpublished version survives even when it is beyond `keep`.
    assert versions.prune(root, keep=1, grace=timedelta(hours=1), now=now) == [old[4]]
    assert versions.list_versions(root) == [old[1], young]


def test_prune_refuses_keep_below_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep must be at least 1"):
        versions.prune(str(tmp_path), keep=0)


def test_reader_during_publishes_always_sees_a_complete_version(root: str) -> None:
    versions.publish(root, write_version(root, "v0"))
    errors: list[BaseException] = []
    seen: set[str] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.add(assert_complete(versions.resolve(root)))
            except BaseException as exc:  # any failure is the test's failure
                errors.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(1, 6):
            versions.publish(root, write_version(root, f"v{i}"))
    finally:
        done.set()
        reader.join()
    assert errors == []
    assert seen <= {f"v{i}" for i in range(6)}


# --- killed writers (SIGKILL, no cleanup) -------------------------------------------------

WRITER = """
import hashlib, json, os, signal, sys
from pipelines.io import storage, versions

root, stop_at = sys.argv[1], sys.argv[2]

def point(name):
    if name == stop_at:
        os.kill(os.getpid(), signal.SIGKILL)

cycle = 0
while True:
    cycle += 1
    version_id, folder = versions.new_version(root)
    point("new_version")
    shards = {}
    for i in range(3):
        data = os.urandom(200_000)
        storage.write_bytes(storage.join(folder, f"train-{i}.tfrecord"), data)
        shards[f"train-{i}.tfrecord"] = hashlib.sha256(data).hexdigest()
        point(f"shard-{i}")
    manifest = json.dumps({"tag": f"child-{cycle}", "shards": shards})
    storage.write_text(storage.join(folder, versions.MANIFEST_FILE), manifest)
    point("manifest")
    versions.publish(root, version_id)
    print("published", cycle, flush=True)
    point("published")
"""


@pytest.mark.slow
def test_killed_writer_leaves_old_or_new_version_never_neither(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    points = ["manifest", "new_version", "shard-1", "manifest", "published", "random", "random"]
    roots, children = [], []
    for n, stop_at in enumerate(points):
        root = str(tmp_path / f"root{n}")
        if n == 0:
            storage.write_text(
                os.path.join(root, "manifest.json"), '{"tag": "legacy", "shards": {}}'
            )
        else:
            versions.publish(root, write_version(root, "before"))
        roots.append(root)
        children.append(
            subprocess.Popen(
                [sys.executable, str(script), root, stop_at],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
    for stop_at, child in zip(points, children, strict=True):
        if stop_at == "random":  # mid-cycle, wherever a random delay lands after a publish
            assert child.stdout is not None
            assert child.stdout.readline().startswith("published")
            time.sleep(random.uniform(0.0, 0.3))
            child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=300) == -signal.SIGKILL

    tags = [assert_complete(versions.resolve(root)) for root in roots]
    assert tags[0] == "legacy"  # a legacy root killed before its first publish stays usable
    assert tags[1:4] == ["before", "before", "before"]  # killed before the switch
    assert tags[4] == "child-1"  # killed just after it
    assert all(tag.startswith("child-") for tag in tags[5:])
