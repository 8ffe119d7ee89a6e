"""The counting TFRecord sink: what it counts while writing equals what a read-back finds."""

from __future__ import annotations

import json
import os

import apache_beam as beam
import pytest

from pipelines.core.manifest import ShardInfo
from pipelines.io.records import shard_info
from pipelines.io.shards import WriteCountedTFRecords
from pipelines.preprocess.transforms import BEAM_COMPRESSION


def _save(result: tuple[str, ShardInfo], folder: str) -> None:
    """The step's outputs, one JSON file each (a test cannot share a list with the runner)."""
    uri, info = result
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, os.path.basename(uri) + ".json"), "w") as handle:
        json.dump([uri, info.to_dict()], handle)


def _saved(folder) -> list[tuple[str, ShardInfo]]:
    found = []
    for path in sorted(folder.iterdir()):
        uri, info = json.loads(path.read_text())
        found.append((uri, ShardInfo.from_dict(info)))
    return found


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_counted_shards_match_a_read_back(tmp_path, compression):
    records = [bytes([i]) * (1000 + 37 * i) for i in range(25)]
    prefix = os.path.join(tmp_path, "train")
    with beam.Pipeline() as pipeline:
        counted = (
            pipeline
            | beam.Create(records)
            | WriteCountedTFRecords(
                prefix,
                file_name_suffix=".tfrecord",
                num_shards=3,
                compression_type=BEAM_COMPRESSION[compression],
            )
        )
        _ = counted | beam.Map(_save, str(tmp_path / "found"))
    found = _saved(tmp_path / "found")
    assert len(found) == 3
    assert sorted(os.path.basename(uri) for uri, _ in found) == [
        f"train-0000{i}-of-00003.tfrecord" for i in range(3)
    ]
    for uri, info in found:
        assert info == shard_info(uri, compression)  # records, size and sha256 of the file
    assert sum(info.records for _, info in found) == len(records)


def test_an_empty_split_still_gets_one_counted_empty_shard(tmp_path):
    with beam.Pipeline() as pipeline:
        counted = (
            pipeline
            | beam.Create([b"x"])
            | beam.Filter(lambda _: False)
            | WriteCountedTFRecords(os.path.join(tmp_path, "val"), file_name_suffix=".tfrecord")
        )
        _ = counted | beam.Map(_save, str(tmp_path / "found"))
    found = _saved(tmp_path / "found")
    assert len(found) == 1
    uri, info = found[0]
    assert os.path.exists(uri) and info.records == 0 and info == shard_info(uri, "none")
