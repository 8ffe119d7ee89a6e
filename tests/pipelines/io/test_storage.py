"""The storage layer behaves the same on local paths and on gs:// (a real GCS emulator)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.core.naming import basename
from pipelines.io import storage


@pytest.fixture(params=["local", "gcs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    return str(request.getfixturevalue("gcs_root"))


def test_join_and_basename() -> None:
    assert storage.join("gs://b/p/", "x", "y.png") == "gs://b/p/x/y.png"
    assert storage.join("/data", "a.jpg") == "/data/a.jpg"
    assert basename("gs://b/p/x.png") == "x.png"
    assert storage.is_remote("gs://b") and not storage.is_remote("/tmp/x")


def test_write_read_match_copy_delete(root: str, tmp_path: Path) -> None:
    storage.write_bytes(storage.join(root, "b.bin"), b"\x00\x01")
    storage.write_text(storage.join(root, "a.txt"), "héllo")
    # .gz content must come back as stored, never silently decompressed.
    storage.write_bytes(storage.join(root, "c.gz"), b"not gzip")
    assert storage.read_text(storage.join(root, "a.txt")) == "héllo"
    assert storage.read_bytes(storage.join(root, "c.gz")) == b"not gzip"
    assert storage.exists(storage.join(root, "b.bin"))
    assert not storage.exists(storage.join(root, "nope"))
    names = [basename(u) for u in storage.list_files(root)]
    assert names == ["a.txt", "b.bin", "c.gz"]
    assert [basename(u) for u in storage.match(storage.join(root, "*.txt"))] == ["a.txt"]
    assert storage.match(storage.join(root, "*.none")) == []

    local = tmp_path / "copy" / "a.txt"
    storage.copy_file(storage.join(root, "a.txt"), str(local))
    assert local.read_text() == "héllo"
    storage.upload_file(str(local), storage.join(root, "sub", "up.txt"))
    with storage.local_copy(storage.join(root, "sub", "up.txt")) as path:
        assert os.path.exists(path) and Path(path).read_text() == "héllo"

    storage.delete([storage.join(root, "b.bin"), storage.join(root, "c.gz")])
    assert not storage.exists(storage.join(root, "b.bin"))
    if not storage.is_remote(root):
        assert not [n for n in os.listdir(root) if ".tmp-" in n]  # atomic writes leave no temp


def test_check_readable_root(root: str) -> None:
    storage.write_text(storage.join(root, "x.txt"), "x")
    storage.check_readable_root(root)


def test_check_readable_root_missing_local_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        storage.check_readable_root(str(tmp_path / "missing"))


def test_check_readable_root_missing_bucket(gcs_emulator: str) -> None:
    with pytest.raises(FileNotFoundError, match="no-such-bucket-landcover"):
        storage.check_readable_root("gs://no-such-bucket-landcover/raw")


def test_list_with_sizes_reports_relative_names_and_sizes(tmp_path: Path) -> None:
    (tmp_path / "a_sat.jpg").write_bytes(b"x" * 7)
    (tmp_path / "b_mask.png").write_bytes(b"y" * 3)
    assert storage.list_with_sizes(str(tmp_path)) == [("a_sat.jpg", 7), ("b_mask.png", 3)]


def test_list_with_sizes_on_gcs(gcs_root: str) -> None:
    storage.write_bytes(storage.join(gcs_root, "raw", "1_sat.jpg"), b"abcd")
    assert storage.list_with_sizes(storage.join(gcs_root, "raw")) == [("1_sat.jpg", 4)]


def test_modified_time_names_only_the_object_itself(root: str) -> None:
    import time

    odd = storage.join(root, "scene [1]*.tif")
    storage.write_bytes(odd, b"x")
    storage.write_bytes(storage.join(root, "scene 1.tif"), b"y")  # what "[1]" would glob
    stamp = storage.modified_time(odd)
    assert stamp is not None and abs(stamp - time.time()) < 3600
    assert storage.modified_time(storage.join(root, "scene [2].tif")) is None


def test_names_with_pattern_characters_are_literal_in_every_call(root: str) -> None:
    """``tile[1]`` beside ``tile1``: Beam's delete would take the first for a pattern of the
    second; exists, listing, size and delete here touch only the named object."""
    folder = storage.join(root, "in [x]*")  # the folder's own name holds pattern characters
    odd, plain = storage.join(folder, "tile[1].done.json"), storage.join(folder, "tile1.done.json")
    storage.write_bytes(odd, b"odd")
    storage.write_bytes(plain, b"plain!")
    storage.write_bytes(storage.join(folder, "a*b.txt"), b"x")
    assert storage.list_files(folder) == sorted([odd, plain, storage.join(folder, "a*b.txt")])
    assert storage.match_in(folder, "*.done.json") == sorted([odd, plain])
    assert storage.size_of(odd) == 3 and storage.size_of(storage.join(folder, "tile?")) is None
    storage.delete([odd])
    assert storage.exists(plain) and not storage.exists(odd)
    storage.delete([storage.join(folder, "a?b.txt"), storage.join(folder, "*")])  # absent: no-op
    assert storage.list_files(folder) == sorted([plain, storage.join(folder, "a*b.txt")])
    assert storage.literal("gs://b/t[1]*?.tif") == "gs://b/t[[]1[]][*][?].tif"


def test_no_module_hands_a_name_to_beams_globbing_calls() -> None:
    """Every delete and match of a name goes through ``storage`` (which escapes it)."""
    import re

    project = Path(__file__).resolve().parents[3]
    pattern = re.compile(r"FileSystems\.(delete|match|exists)\(")
    offenders = [
        f"{path.relative_to(project)}:{number}"
        for package in ("pipelines", "flows", "models", "infra")
        for path in sorted((project / package).rglob("*.py"))
        if path.name != "storage.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []
