"""Patches in and out of records, and a dataset's files: the codec side of the record schema.

``encode_patch`` is the one writer of the schema in ``pipelines.core.records``; ``decode_patch``
reads a record back without tf.data (tests, tools). ``models.records`` is the tf.data reader.
:func:`read_manifest` and :func:`write_manifest` are the one reader and the one writer of a
dataset's ``manifest.json`` (:class:`pipelines.core.manifest.Manifest`).

A dataset root holds versions (:mod:`pipelines.io.versions`): ``ROOT/versions/<id>/`` with
the shards, ``errors/`` and ``manifest.json``, and ``ROOT/CURRENT`` naming the published one.
Every reader here takes a root (or a version folder, or a legacy folder with a manifest in it)
and resolves it first, so nobody reads a half-written version. :func:`shard_info` counts a
written shard's records and checksums it; :func:`verify_shards` checks a dataset's shards
against its manifest before training trusts them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zlib
from typing import IO, Any

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipelines.core.manifest import Manifest, ShardInfo
from pipelines.core.records import (
    MANIFEST_NAME,
    PNG_COMPRESS_LEVEL,
    SPLITS,
    RecordFormat,
    serialize_example,
)
from pipelines.io import storage, versions
from pipelines.io.imaging import decode_png, encode_png
from pipelines.io.integrity import atomic_write, digest_of

_CHUNK = 1 << 20
# A TFRecord: uint64 length, uint32 CRC of the length, the data, uint32 CRC of the data.
_HEADER = 12
_FOOTER = 4


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
        image, ids = decode_png(image_bytes, "<record image>"), decode_png(mask_bytes, "<mask>")
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


def resolve_dataset(dataset_uri: str) -> str:
    """The folder a dataset's readers use: the published version of a root, or a version or
    legacy folder holding ``manifest.json`` itself. FileNotFoundError says what to run."""
    return versions.resolve(
        dataset_uri.rstrip("/"), marker=MANIFEST_NAME, hint="run preprocess first"
    )


def read_manifest(records_uri: str) -> Manifest:
    """The manifest of the dataset at ``records_uri`` (resolved: see :func:`resolve_dataset`);
    it says how its records are encoded.

    FileNotFoundError when there is none, ValueError (naming what is missing) when it is not a
    complete manifest.
    """
    manifest_uri = storage.join(resolve_dataset(records_uri), MANIFEST_NAME)
    try:
        return Manifest.from_dict(json.loads(storage.read_text(manifest_uri)))
    except ValueError as error:
        raise ValueError(f"{manifest_uri}: {error}") from error


def write_manifest(folder_uri: str, manifest: Manifest) -> str:
    """Write ``manifest.json`` into a dataset version's folder, atomically (2-space indented
    JSON and a final newline, the shape it always had); returns its URI. It is the version's
    completeness marker: written after every shard is in place."""
    manifest_uri = storage.join(folder_uri, MANIFEST_NAME)
    atomic_write(manifest_uri, json.dumps(manifest.to_dict(), indent=2) + "\n")
    return manifest_uri


def split_files(records_uri: str, split: str) -> list[str]:
    """The shard files of one split of the dataset at ``records_uri``, sorted, as its manifest
    lists them (e.g. ``train-00000-of-00004.tfrecord``), so a stray file never joins a split."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    folder = resolve_dataset(records_uri)
    manifest = read_manifest(folder)
    if split not in manifest.files:  # a manifest that lists no files: what the folder holds
        return storage.match_in(folder, f"{split}-*-of-*")
    return sorted(storage.join(folder, name) for name in manifest.files[split])


class _HashingReader:
    """A file-like over a raw object that hashes and counts every byte read through it."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


class _ZlibReader:
    """Decompresses a zlib stream (tf.data ``ZLIB`` = Beam ``DEFLATE``) as a file-like."""

    def __init__(self, raw: _HashingReader) -> None:
        self.raw = raw
        self.inflate = zlib.decompressobj(zlib.MAX_WBITS)
        self.buffer = b""

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size and not self.inflate.eof:
            chunk = self.raw.read(_CHUNK)
            if not chunk:
                break
            self.buffer += self.inflate.decompress(chunk)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def _count_records(stream: Any, uri: str) -> int:
    records = 0
    while header := stream.read(_HEADER):
        if len(header) < _HEADER:
            raise ValueError(f"{uri}: truncated record header after {records} records")
        (length,) = struct.unpack("<Q", header[:8])
        remaining = length + _FOOTER
        while remaining:
            chunk = stream.read(min(remaining, _CHUNK))
            if not chunk:
                raise ValueError(f"{uri}: truncated record {records} ({length} bytes expected)")
            remaining -= len(chunk)
        records += 1
    return records


def shard_info(uri: str, compression: str) -> ShardInfo:
    """Records in a written shard, and its size and sha256 (of the stored, compressed bytes).

    One streamed pass; ValueError naming the shard when it ends inside a record.
    """
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        raw = _HashingReader(handle)
        stream: Any = raw
        if compression == "gzip":
            stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
        elif compression == "zlib":
            stream = _ZlibReader(raw)
        try:
            records = _count_records(stream, uri)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{uri}: cannot decompress: {exc}") from exc
        raw.drain()
    return ShardInfo(records=records, size=raw.size, sha256=raw.digest.hexdigest())


def verify_shards(dataset_uri: str) -> list[str]:
    """Problems with a dataset's shards against its manifest; empty when all are intact.

    Each problem is one line naming the bad shard: missing, size or checksum differs from what
    the manifest recorded when it was written, or a manifest that records no checksums (written
    before they existed: re-run preprocess). Training calls this before its first step.
    """
    folder = resolve_dataset(dataset_uri)
    manifest = read_manifest(folder)
    if not manifest.shards:
        return [
            f"{storage.join(folder, MANIFEST_NAME)} records no shard checksums (written by an "
            "older preprocess): re-run `landcover preprocess` to write a verifiable dataset"
        ]
    problems = []
    for split in SPLITS:
        for name in manifest.files.get(split, ()):
            uri = storage.join(folder, name)
            expected = manifest.shards.get(name)
            if expected is None:
                problems.append(f"{uri}: not in the manifest's shard checksums")
            elif not storage.exists(uri):
                problems.append(f"{uri}: missing ({expected.records} records expected)")
            else:
                size, sha = digest_of(uri)
                if size != expected.size:
                    problems.append(
                        f"{uri}: {size} bytes, the manifest recorded {expected.size} "
                        f"({expected.records} records): truncated or replaced"
                    )
                elif sha != expected.sha256:
                    problems.append(f"{uri}: checksum differs from the manifest's (changed)")
    return problems
