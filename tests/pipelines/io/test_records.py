"""The TFRecord schema: what the writer encodes, the reader recovers exactly (one-hot included)."""

from __future__ import annotations

import json
from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from models import records
from pipelines.core.manifest import Manifest
from pipelines.core.palette import NUM_CLASSES
from pipelines.core.records import MANIFEST_NAME, RecordFormat, serialize_example
from pipelines.io.records import (
    decode_patch,
    encode_patch,
    read_manifest,
    split_files,
    write_manifest,
)
from pipelines.preprocess.transforms import BEAM_COMPRESSION

FORMATS = [RecordFormat(c, z) for c in ("raw", "png") for z in ("none", "gzip", "zlib")]


def _patch(seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (size, size, 3)).astype(np.uint8)
    ids = rng.integers(0, NUM_CLASSES, (size, size)).astype(np.uint8)
    return image, ids


def test_default_format_is_raw_uncompressed() -> None:
    # Chosen by `landcover bench preprocess --all-formats` (README).
    assert RecordFormat() == RecordFormat("raw", "none")
    assert RecordFormat("png", "gzip").suffix == ".tfrecord.gz"
    assert RecordFormat.from_dict(RecordFormat("raw", "zlib").to_dict()).tf_compression == "ZLIB"
    with pytest.raises(ValueError, match="valid: raw, png"):
        RecordFormat("jpeg")  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["raw", "png"])
def test_one_hot_round_trip_through_encode_and_parse(codec: str) -> None:
    fmt = RecordFormat(codec)  # type: ignore[arg-type]
    image, ids = _patch(0, 64)
    # A strided window, as preprocess cuts it out of a scene.
    window = (slice(8, 40), slice(16, 48))
    serialized = encode_patch("scène-7", 8, 16, image[window], ids[window], fmt)
    parsed_image, parsed_ids = records.parse_fn(fmt, 32)(tf.constant(serialized))
    assert np.array_equal(parsed_image.numpy(), image[window])
    assert np.array_equal(parsed_ids.numpy(), ids[window])
    hot = records.ids_to_one_hot(parsed_ids).numpy()
    assert hot.shape == (32, 32, NUM_CLASSES) and hot.dtype == np.float32
    assert np.array_equal(hot, np.eye(NUM_CLASSES, dtype=np.float32)[ids[window]])
    assert np.array_equal(hot.argmax(-1), ids[window]) and hot.sum() == 32 * 32

    decoded = decode_patch(serialized, fmt)
    assert decoded["scene_id"] == "scène-7" and (decoded["y"], decoded["x"]) == (8, 16)
    assert np.array_equal(decoded["image"], image[window])
    assert np.array_equal(decoded["class_ids"], ids[window])


def test_hand_written_example_is_what_tensorflow_parses() -> None:
    image, ids = _patch(1, 5)
    serialized = encode_patch("a", 300, 2**40, image, ids, RecordFormat("raw"))
    example = tf.train.Example.FromString(serialized)
    feature = example.features.feature
    assert sorted(feature) == ["height", "image", "mask", "scene_id", "width", "x", "y"]
    assert feature["y"].int64_list.value == [300] and feature["x"].int64_list.value == [2**40]
    assert feature["image"].bytes_list.value == [image.tobytes()]
    assert feature["mask"].bytes_list.value == [ids.tobytes()]
    negative = serialize_example({"n": -5}, {})
    assert tf.train.Example.FromString(negative).features.feature["n"].int64_list.value == [-5]


def test_encode_rejects_mismatched_shapes() -> None:
    image, ids = _patch(2, 8)
    with pytest.raises(ValueError, match="does not match"):
        encode_patch("a", 0, 0, image[:4], ids, RecordFormat())


def _write_dataset(test_pipeline, folder: Path, fmt: RecordFormat, splits: dict) -> None:  # type: ignore[no-untyped-def]
    """Shards written by Beam's sink exactly as preprocess writes them, plus a manifest."""
    with test_pipeline() as p:
        for split, patches in splits.items():
            _ = (
                p
                | f"Create{split}" >> beam.Create(patches)
                | f"Write{split}"
                >> beam.io.WriteToTFRecord(
                    str(folder / split),
                    file_name_suffix=fmt.suffix,
                    compression_type=BEAM_COMPRESSION[fmt.compression],
                )
            )
    manifest = Manifest.build(
        patch_size=16,
        record_format=fmt,
        scene_ids={split: ["s"] if patches else [] for split, patches in splits.items()},
        patches={split: len(patches) for split, patches in splits.items()},
    )
    write_manifest(str(folder), manifest)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f"{f.codec}-{f.compression}")
def test_reader_reads_beam_written_shards_in_every_format(
    fmt: RecordFormat, tmp_path: Path, test_pipeline
) -> None:  # type: ignore[no-untyped-def]
    patches = [_patch(seed, 16) for seed in range(3)]
    serialized = [encode_patch("s", i, 0, im, ids, fmt) for i, (im, ids) in enumerate(patches)]
    _write_dataset(test_pipeline, tmp_path, fmt, {"train": serialized, "val": []})
    assert [Path(f).name for f in split_files(str(tmp_path), "train")] == [
        f"train-00000-of-00001{fmt.suffix}"
    ]
    read = list(records.make_dataset(str(tmp_path), "train", deterministic=True))
    assert len(read) == 3
    got = sorted((im.numpy().tobytes(), ids.numpy().tobytes()) for im, ids in read)
    assert got == sorted((im.tobytes(), ids.tobytes()) for im, ids in patches)
    # A split without scenes still has a (readable, empty) shard.
    assert list(records.make_dataset(str(tmp_path), "val")) == []


def test_reader_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run preprocess first"):
        records.make_dataset(str(tmp_path), "train")
    # A manifest that is not complete is refused, naming what it lacks.
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"patch_size": 16}))
    with pytest.raises(ValueError, match=r"manifest\.json: the manifest lacks schema_version"):
        records.make_dataset(str(tmp_path), "train")
    with pytest.raises(ValueError, match="unknown split"):
        split_files(str(tmp_path), "test")


def test_manifest_written_and_read_back_through_the_one_writer_and_reader(tmp_path: Path) -> None:
    manifest = Manifest.build(
        patch_size=32,
        record_format=RecordFormat("png", "zlib"),
        scene_ids={"train": ["b", "a"], "val": ["c"]},
        patches={"train": 8, "val": 4},
        files={"train": [str(tmp_path / "train-00000-of-00001.tfrecord.zlib")]},
        created_at="2026-01-01T00:00:00+00:00",
    )
    uri = write_manifest(str(tmp_path), manifest)
    assert uri == str(tmp_path / MANIFEST_NAME)
    text = (tmp_path / MANIFEST_NAME).read_text()
    assert text == json.dumps(manifest.to_dict(), indent=2) + "\n"
    assert read_manifest(str(tmp_path)) == manifest
    assert json.loads(text)["files"] == {"train": ["train-00000-of-00001.tfrecord.zlib"]}
