"""The manifest type: the JSON shape byte for byte, what from_dict refuses, the accessors."""

from __future__ import annotations

import copy
import json

import pytest

from pipelines.core.manifest import MANIFEST_KEYS, Manifest
from pipelines.core.records import RecordFormat

# What preprocess wrote before the manifest had a type (keys, nesting, order, indentation),
# plus the keys added since (``shards``; ``gsd``, null when unknown).
GOLDEN = """{
  "schema_version": 1,
  "patch_size": 64,
  "gsd": null,
  "scenes": {
    "train": 2,
    "val": 1
  },
  "patches": {
    "train": 8,
    "val": 4
  },
  "scene_ids": {
    "train": [
      "a",
      "b"
    ],
    "val": [
      "c"
    ]
  },
  "class_pixels": {
    "urban": 8,
    "agriculture": 8,
    "rangeland": 8,
    "forest": 8,
    "water": 8,
    "barren": 8,
    "unknown": 8
  },
  "class_pixels_by_split": {
    "train": {
      "urban": 1,
      "agriculture": 2,
      "rangeland": 3,
      "forest": 4,
      "water": 5,
      "barren": 6,
      "unknown": 7
    },
    "val": {
      "urban": 7,
      "agriculture": 6,
      "rangeland": 5,
      "forest": 4,
      "water": 3,
      "barren": 2,
      "unknown": 1
    }
  },
  "errors": 5,
  "record_format": {
    "codec": "png",
    "compression": "gzip"
  },
  "files": {
    "train": [
      "train-00000-of-00002.tfrecord.gz",
      "train-00001-of-00002.tfrecord.gz"
    ],
    "val": [
      "val-00000-of-00001.tfrecord.gz"
    ],
    "errors": [
      "errors-00000-of-00001.jsonl"
    ]
  },
  "shards": {},
  "options": {
    "input": "/in",
    "output": "/out",
    "patch_size": 64,
    "val_fraction": 0.3,
    "seed": 7,
    "record_format": {
      "codec": "png",
      "compression": "gzip"
    },
    "num_shards": 3,
    "runner": "DirectRunner"
  },
  "created_at": "2026-01-02T03:04:05+00:00"
}"""


def _built() -> Manifest:
    return Manifest.build(
        patch_size=64,
        record_format=RecordFormat("png", "gzip"),
        scene_ids={"train": ["b", "a"], "val": ["c"]},
        patches={"train": 8, "val": 4},
        class_pixels_by_split={"train": [1, 2, 3, 4, 5, 6, 7], "val": [7, 6, 5, 4, 3, 2, 1]},
        errors=5,
        files={
            "train": [
                "/out/train-00001-of-00002.tfrecord.gz",
                "gs://b/train-00000-of-00002.tfrecord.gz",
            ],
            "val": ["/out/val-00000-of-00001.tfrecord.gz"],
            "errors": ["/out/errors/errors-00000-of-00001.jsonl"],
        },
        options={
            "input": "/in",
            "output": "/out",
            "patch_size": 64,
            "val_fraction": 0.3,
            "seed": 7,
            "record_format": {"codec": "png", "compression": "gzip"},
            "num_shards": 3,
            "runner": "DirectRunner",
        },
        created_at="2026-01-02T03:04:05+00:00",
    )


def test_build_writes_the_shape_preprocess_always_wrote() -> None:
    manifest = _built()
    assert json.dumps(manifest.to_dict(), indent=2) == GOLDEN
    assert list(manifest.to_dict()) == list(MANIFEST_KEYS)


def test_round_trip_through_json() -> None:
    parsed = Manifest.from_dict(json.loads(GOLDEN))
    assert parsed == _built()
    assert json.dumps(parsed.to_dict(), indent=2) == GOLDEN


def test_accessors() -> None:
    manifest = _built()
    assert manifest.patch_count("train") == 8 and manifest.patch_count("val") == 4
    assert manifest.scene_count("train") == 2 and manifest.total_scenes == 3
    assert manifest.total_patches == 12
    assert manifest.val_scene_ids == ["c"] and manifest.train_scene_ids == ["a", "b"]
    assert manifest.record_format == RecordFormat("png", "gzip")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        manifest.patch_count("test")


def test_build_defaults_for_an_empty_dataset() -> None:
    manifest = Manifest.build(patch_size=32, record_format=RecordFormat(), scene_ids={}, patches={})
    assert manifest.scenes == {"train": 0, "val": 0} and manifest.errors == 0
    assert set(manifest.class_pixels.values()) == {0}
    assert manifest.created_at.endswith("+00:00")
    assert Manifest.from_dict(manifest.to_dict()) == manifest


def test_from_dict_names_what_is_missing() -> None:
    with pytest.raises(ValueError, match=r"lacks scene_ids, files \(.*re-run preprocess"):
        data = json.loads(GOLDEN)
        del data["scene_ids"], data["files"]
        Manifest.from_dict(data)
    with pytest.raises(ValueError, match="lacks schema_version, patch_size, scenes"):
        Manifest.from_dict({"patches": {"train": 1, "val": 1}})
    with pytest.raises(ValueError, match="a manifest is a JSON object"):
        Manifest.from_dict([])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("schema_version",), 2, "schema_version 2 is not supported"),
        (("patches",), {"train": 1}, r"patches must have exactly the splits \['train', 'val'\]"),
        (("scene_ids",), ["a"], "scene_ids must have exactly the splits"),
        (("class_pixels", "urban"), None, "class_pixels must name the classes"),
        (("class_pixels_by_split", "val", "water"), None, "class_pixels_by_split.val must name"),
        (("record_format",), {"codec": "raw"}, "record_format is incomplete"),
        (("record_format",), {"codec": "jpeg", "compression": "none"}, "unknown codec 'jpeg'"),
    ],
)
def test_from_dict_refuses_a_wrong_shape(
    path: tuple[str, ...], value: object, message: str
) -> None:
    data = copy.deepcopy(json.loads(GOLDEN))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(ValueError, match=message):
        Manifest.from_dict(data)


def test_shards_are_checked_against_the_patches_and_optional_on_read() -> None:
    from pipelines.core.manifest import ShardInfo

    sha = "a" * 64
    kwargs = {
        "patch_size": 8,
        "record_format": RecordFormat(),
        "scene_ids": {"train": ["1"], "val": ["2"]},
        "patches": {"train": 3, "val": 1},
        "files": {"train": ["/o/train-0.tfrecord"], "val": ["/o/val-0.tfrecord"]},
    }
    shards = {
        "/o/train-0.tfrecord": ShardInfo(3, 30, sha),
        "/o/val-0.tfrecord": ShardInfo(1, 9, sha),
    }
    manifest = Manifest.build(**kwargs, shards=shards, created_at="t")
    assert manifest.shards == {
        "train-0.tfrecord": ShardInfo(3, 30, sha),
        "val-0.tfrecord": ShardInfo(1, 9, sha),
    }
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    with pytest.raises(ValueError, match="train shards hold 2 records but 3 patches"):
        Manifest.build(**kwargs, shards={**shards, "/o/train-0.tfrecord": ShardInfo(2, 30, sha)})
    with pytest.raises(ValueError, match=r"no record count for val shard"):
        Manifest.build(**kwargs, shards={"/o/train-0.tfrecord": ShardInfo(3, 30, sha)})
    legacy = manifest.to_dict()
    del legacy["shards"]
    assert Manifest.from_dict(legacy).shards == {}


def test_gsd_is_recorded_and_optional_on_read() -> None:
    from pipelines.core.gsd import DatasetGsd

    gsd = DatasetGsd(1.0, {"0.5": 3}, target=1.0)
    manifest = Manifest.from_dict({**json.loads(GOLDEN), "gsd": gsd.to_dict()})
    assert manifest.gsd == gsd
    assert manifest.to_dict()["gsd"]["metres_per_pixel"] == 1.0
    assert Manifest.from_dict(manifest.to_dict()) == manifest
    legacy = json.loads(GOLDEN)
    del legacy["gsd"]
    assert Manifest.from_dict(legacy).gsd is None
    with pytest.raises(ValueError, match="manifest gsd"):
        Manifest.from_dict({**legacy, "gsd": {"native": {}}})
