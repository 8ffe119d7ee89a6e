"""Training data is verified shard by shard before the first step, and fingerprinted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from models.train.data_check import BadShardError, check_training_data
from pipelines.io import versions


@pytest.fixture(scope="module")
def records_uri(make_records: Callable[..., str]) -> str:
    return make_records(scenes=3, size=128, patch=64, seed=4, val_fraction=0.34)


def copy_dataset(records_uri: str, dest: Path) -> Path:
    """A legacy-layout copy (manifest + shards in one folder) of the dataset's current version."""
    import shutil

    folder = Path(versions.resolve(records_uri))
    shutil.copytree(folder, dest)
    return dest


def test_a_sound_dataset_passes_and_counts_match_the_manifest(records_uri: str) -> None:
    check = check_training_data(records_uri)
    for split, shards in check.shards.items():
        assert sum(s.records for s in shards) == check.manifest.patch_count(split)
        assert all(len(s.sha256) == 64 for s in shards)
    assert check_training_data(records_uri).fingerprint == check.fingerprint


def test_a_truncated_shard_is_named_not_read_as_a_shorter_dataset(
    records_uri: str, tmp_path: Path
) -> None:
    data = copy_dataset(records_uri, tmp_path / "data")
    shard = sorted(data.glob("train-*-of-*"))[0]
    content = shard.read_bytes()
    shard.write_bytes(content[: len(content) - 100])  # a lost tail, as a killed upload leaves
    # the manifest's recorded size and checksum catch it first, naming the shard
    with pytest.raises(BadShardError, match=rf"{shard.name}: \d+ bytes, .* truncated"):
        check_training_data(str(data))


def test_a_missing_shard_is_named(records_uri: str, tmp_path: Path) -> None:
    data = copy_dataset(records_uri, tmp_path / "data")
    shard = sorted(data.glob("val-*-of-*"))[0]
    shard.unlink()
    with pytest.raises(BadShardError, match=rf"{shard.name}"):
        check_training_data(str(data))


def test_records_that_do_not_add_up_to_the_manifest_are_refused(
    records_uri: str, tmp_path: Path
) -> None:
    data = copy_dataset(records_uri, tmp_path / "data")
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["patches"]["train"] += 1
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BadShardError, match=r"the train shards .* hold .* but the manifest"):
        check_training_data(str(data))


def test_the_fingerprint_follows_the_shards_content(records_uri: str, tmp_path: Path) -> None:
    data = copy_dataset(records_uri, tmp_path / "data")
    before = check_training_data(str(data)).fingerprint
    shard = sorted(data.glob("train-*-of-*"))[0]
    content = bytearray(shard.read_bytes())
    content[40] ^= 0xFF  # inside a record's payload: still readable (TFRecord CRCs aside)
    shard.write_bytes(bytes(content))
    try:
        after = check_training_data(str(data)).fingerprint
    except BadShardError:
        return  # the record's CRC caught the flip: refused outright, also fine
    assert after != before
