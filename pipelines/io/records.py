"""Patches in and out of records, and a dataset's files: the codec side of the record schema.

``encode_patch`` is the one writer of the schema in ``pipelines.core.records``; ``decode_patch``
reads a record back without tf.data (tests, tools). ``models.records`` is the tf.data reader.
:func:`read_manifest` and :func:`write_manifest` are the one reader and the one writer of a
dataset's ``manifest.json`` (:class:`pipelines.core.manifest.Manifest`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from pipelines.core.manifest import Manifest
from pipelines.core.records import (
    MANIFEST_NAME,
    PNG_COMPRESS_LEVEL,
    SPLITS,
    RecordFormat,
    serialize_example,
)
from pipelines.io import storage
from pipelines.io.imaging import decode_png, encode_png


def encode_patch(
    scene_id: str, y: int, x: int, image: np.ndarray, class_ids: np.ndarray, fmt: RecordFormat
) -> bytes:
    """One patch → a serialized ``tf.train.Example`` (the schema's single definition)."""
    height, width = class_ids.shape
    if image.shape != (height, width, 3):
        raise ValueError(f"image {image.shape} does not match mask {class_ids.shape}")
    image_bytes: bytes | memoryview
    mask_bytes: bytes | memoryview
    if fmt.codec == "png":
        image_bytes = encode_png(image, PNG_COMPRESS_LEVEL)
        mask_bytes = encode_png(class_ids, PNG_COMPRESS_LEVEL)
    else:
        # One copy of a (strided) window into C order, then one into the record: the record
        # is assembled by b"".join, which takes the arrays' buffers without a tobytes() copy.
        image_bytes = np.ascontiguousarray(image).data.cast("B")
        mask_bytes = np.ascontiguousarray(class_ids).data.cast("B")
    return serialize_example(
        {"y": y, "x": x, "height": height, "width": width},
        {"scene_id": scene_id.encode("utf-8"), "image": image_bytes, "mask": mask_bytes},
    )


def decode_patch(serialized: bytes, fmt: RecordFormat) -> dict[str, Any]:
    """A serialized patch → plain Python/NumPy values, without tf.data (tests, tools)."""
    from tensorflow.core.example import example_pb2

    feature = example_pb2.Example.FromString(serialized).features.feature
    height = feature["height"].int64_list.value[0]
    width = feature["width"].int64_list.value[0]
    image_bytes = feature["image"].bytes_list.value[0]
    mask_bytes = feature["mask"].bytes_list.value[0]
    if fmt.codec == "png":
        image, ids = decode_png(image_bytes), decode_png(mask_bytes)
    else:
        image = np.frombuffer(image_bytes, np.uint8).reshape(height, width, 3)
        ids = np.frombuffer(mask_bytes, np.uint8).reshape(height, width)
    return {
        "scene_id": feature["scene_id"].bytes_list.value[0].decode("utf-8"),
        "y": feature["y"].int64_list.value[0],
        "x": feature["x"].int64_list.value[0],
        "image": image,
        "class_ids": ids,
    }


def read_manifest(records_uri: str) -> Manifest:
    """The manifest of the dataset under ``records_uri``; it says how its records are encoded.

    FileNotFoundError when there is none, ValueError (naming what is missing) when it is not a
    complete manifest.
    """
    manifest_uri = storage.join(records_uri, MANIFEST_NAME)
    if not storage.exists(manifest_uri):
        raise FileNotFoundError(f"no {MANIFEST_NAME} under {records_uri}: run preprocess first")
    try:
        return Manifest.from_dict(json.loads(storage.read_text(manifest_uri)))
    except ValueError as error:
        raise ValueError(f"{manifest_uri}: {error}") from error


def write_manifest(records_uri: str, manifest: Manifest) -> str:
    """Write ``manifest.json`` under ``records_uri`` (2-space indented JSON and a final newline,
    the shape it always had); returns its URI."""
    manifest_uri = storage.join(records_uri, MANIFEST_NAME)
    storage.write_text(manifest_uri, json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest_uri


def split_files(records_uri: str, split: str) -> list[str]:
    """The shard files of one split, sorted, e.g. ``train-00000-of-00004.tfrecord``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return storage.match(storage.join(records_uri, f"{split}-*-of-*"))
