"""Verified moves and create-only writes, on local folders and on a real GCS emulator."""

from __future__ import annotations

import hashlib
import os
import threading
import tracemalloc
from pathlib import Path

import pytest

from pipelines.core.provenance import FileDigest, InputRef, ModelRef, OutputRecord
from pipelines.io import integrity, storage
from pipelines.io.integrity import (
    AlreadyExistsError,
    ConflictError,
    IntegrityError,
    atomic_write,
    digest_of,
    sha256_of,
    verified_copy,
    verified_move,
    verify_outputs,
    write_new,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["local", "gcs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "root")
    return str(request.getfixturevalue("gcs_root"))


@pytest.fixture(params=["local", "gcs"])
def other_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A second root, so copies cross filesystems (local↔gs) as well as stay within one."""
    if request.param == "local":
        return str(tmp_path / "other")
    return str(request.getfixturevalue("gcs_root"))


def put(uri: str, data: bytes) -> str:
    storage.write_bytes(uri, data)
    return uri


def leftovers(folder: str) -> list[str]:
    """Temp files a local write left behind (none may remain)."""
    if storage.is_remote(folder) or not os.path.isdir(folder):
        return []
    return [n for n in os.listdir(folder) if ".tmp-" in n]


def test_digest_and_sha256_of(root: str) -> None:
    data = os.urandom(1000)
    uri = put(storage.join(root, "a.bin"), data)
    assert digest_of(uri) == (1000, sha(data))
    assert sha256_of(uri) == sha(data)


def test_sha256_of_streams_instead_of_reading_whole(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as handle:
        for _ in range(24):
            handle.write(block)
    expected = hashlib.sha256(block * 24).hexdigest()
    tracemalloc.start()
    try:
        assert sha256_of(str(big)) == expected
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # a 24 MiB object never sits in memory whole


def test_verified_copy_within_and_across_filesystems(root: str, other_root: str) -> None:
    data = b"scene bytes" * 100
    src = put(storage.join(root, "in", "1_sat.jpg"), data)
    dst = storage.join(other_root, "out", "1_sat.jpg")
    assert verified_copy(src, dst) == (len(data), sha(data))
    assert storage.read_bytes(dst) == data
    assert storage.read_bytes(src) == data
    assert leftovers(storage.join(other_root, "out")) == []


def test_verified_move_deletes_source_only_after_a_good_copy(root: str, other_root: str) -> None:
    data = b"\x00\x01" * 500
    src = put(storage.join(root, "drops", "1_sat.jpg"), data)
    dst = storage.join(other_root, "raw", "1_sat.jpg")
    assert verified_move(src, dst) == (len(data), sha(data))
    assert not storage.exists(src)
    assert storage.read_bytes(dst) == data


def test_redelivered_identical_move_is_idempotent(root: str) -> None:
    data = b"same"
    dst = storage.join(root, "raw", "1_sat.jpg")
    verified_move(put(storage.join(root, "drops", "1_sat.jpg"), data), dst)
    src = put(storage.join(root, "drops", "1_sat.jpg"), data)  # the same file, delivered again
    assert verified_move(src, dst) == (4, sha(data))
    assert not storage.exists(src)
    assert storage.read_bytes(dst) == data


def test_move_onto_different_content_raises_conflict_and_touches_nothing(root: str) -> None:
    dst = put(storage.join(root, "raw", "1_sat.jpg"), b"accepted earlier")
    src = put(storage.join(root, "drops", "1_sat.jpg"), b"a different scene")
    with pytest.raises(ConflictError, match="different content") as caught:
        verified_move(src, dst)
    assert caught.value.src == src and caught.value.dst == dst
    assert caught.value.src_sha256 == sha(b"a different scene")
    assert caught.value.dst_sha256 == sha(b"accepted earlier")
    assert storage.read_bytes(dst) == b"accepted earlier"
    assert storage.read_bytes(src) == b"a different scene"


def test_copy_that_reads_back_wrong_is_removed(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    src = put(storage.join(root, "a.bin"), b"good bytes")
    dst = storage.join(root, "b.bin")
    real = integrity.digest_of

    def corrupt_readback(uri: str) -> tuple[int, str]:
        size, digest = real(uri)
        return (size, sha(b"bit flip")) if uri == dst else (size, digest)

    monkeypatch.setattr(integrity, "digest_of", corrupt_readback)
    with pytest.raises(IntegrityError, match="bad copy was removed"):
        verified_move(src, dst)
    assert not storage.exists(dst)
    assert storage.read_bytes(src) == b"good bytes"  # the source survives a failed move


def test_move_onto_itself_is_refused(root: str) -> None:
    src = put(storage.join(root, "a.bin"), b"x")
    with pytest.raises(ValueError, match="same object"):
        verified_move(src, src)
    assert storage.read_bytes(src) == b"x"


def test_move_onto_itself_through_a_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.bin").write_bytes(b"x")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(ValueError, match="same object"):
        verified_move(str(tmp_path / "real" / "a.bin"), str(tmp_path / "alias" / "a.bin"))
    assert (tmp_path / "real" / "a.bin").read_bytes() == b"x"


def test_missing_source_is_named(root: str) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.bin"):
        verified_move(storage.join(root, "nope.bin"), storage.join(root, "dst.bin"))


def test_write_new_creates_once(root: str) -> None:
    uri = storage.join(root, "receipts", "r.json")
    write_new(uri, '{"n": 1}')
    with pytest.raises(AlreadyExistsError, match="already exists"):
        write_new(uri, b'{"n": 2}')
    assert storage.read_text(uri) == '{"n": 1}'
    assert leftovers(storage.join(root, "receipts")) == []


def test_write_new_race_has_exactly_one_winner(tmp_path: Path) -> None:
    uri = str(tmp_path / "claim")
    winners: list[int] = []
    barrier = threading.Barrier(8)

    def contend(i: int) -> None:
        barrier.wait()
        try:
            write_new(uri, str(i))
            winners.append(i)
        except AlreadyExistsError:
            pass

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert Path(uri).read_text() == str(winners[0])
    assert leftovers(str(tmp_path)) == []


def test_emulator_ignores_generation_preconditions(gcs_root: str) -> None:
    """Documents a gap: gcp-storage-emulator accepts ``if_generation_match=0`` over an object.

    So on the emulator, write_new and locks rely on their existence checks and the race tests
    run on local folders only; real GCS enforces the precondition (HTTP 412). If this starts
    failing, the emulator has learned preconditions: add gs:// to the race tests.
    """
    blob = integrity.gcs_blob(f"{gcs_root}/gap")
    blob.upload_from_string(b"first", if_generation_match=0)
    blob.upload_from_string(b"second", if_generation_match=0)  # real GCS: PreconditionFailed
    assert storage.read_bytes(f"{gcs_root}/gap") == b"second"


def test_gcs_blob_refuses_non_gs_uris() -> None:
    with pytest.raises(ValueError, match="not a gs://"):
        integrity.gcs_blob("/local/path")
    with pytest.raises(ValueError, match="not a gs://"):
        integrity.gcs_blob("gs://bucket-only")


def test_atomic_write_replaces(root: str) -> None:
    uri = storage.join(root, "CURRENT")
    atomic_write(uri, "one")
    atomic_write(uri, b"two")
    assert storage.read_text(uri) == "two"
    assert leftovers(root) == []


def test_atomic_write_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    uri = str(tmp_path / "pointer")
    values = [bytes([65 + i]) * 100_000 for i in range(4)]
    atomic_write(uri, values[0])
    seen: set[bytes] = set()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.add(Path(uri).read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(200):
        atomic_write(uri, values[i % 4])
    done.set()
    reader.join()
    assert seen <= set(values)


def make_record(folder: str, files: dict[str, bytes]) -> OutputRecord:
    for name, data in files.items():
        put(storage.join(folder, name), data)
    return OutputRecord(
        subject_id="1",
        input=InputRef("in/1_sat.jpg", 3, sha(b"img")),
        model=ModelRef("m", "v1", sha(b"model")),
        options={},
        fingerprint=sha(b"fp"),
        outputs={name: FileDigest(len(data), sha(data)) for name, data in files.items()},
    )


def test_verify_outputs_accepts_intact_outputs(root: str) -> None:
    record = make_record(root, {"1_mask.png": b"mask", "1_probs.npz": b"probs"})
    assert verify_outputs(record, root) == []


def test_verify_outputs_names_missing_truncated_and_changed_files(root: str) -> None:
    record = make_record(
        root, {"1_mask.png": b"mask", "1_classes.png": b"classes", "1_probs.npz": b"probs"}
    )
    put(storage.join(root, "1_mask.png"), b"mas")  # truncated
    put(storage.join(root, "1_classes.png"), b"CLASSES")  # same size, other bytes
    storage.delete([storage.join(root, "1_probs.npz")])
    assert verify_outputs(record, root) == [
        "1_classes.png: checksum differs (content changed since it was recorded)",
        "1_mask.png: size differs (expected 4, found 3)",
        "1_probs.npz: missing",
    ]
