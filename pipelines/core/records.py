"""The TFRecord schema of a preprocessed dataset: the writer's encoder and its tf.data reader.

A patch is stored as its image pixels and its class ids. The one-hot mask is *not* stored: it is
exactly ``one_hot(ids)``, recovered in the reader, so a 612² patch carries 0.37 MB of mask
instead of 10.5 MB of float32 one-hot. The image is never re-encoded lossily: ``raw`` keeps the
decoded JPEG pixels as bytes, ``png`` stores them losslessly. Which codec and which file-level
compression a dataset used is recorded once, in its ``manifest.json`` (``record_format``), and the
reader takes it from there, so writer and reader cannot disagree.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from pipelines.core import storage
from pipelines.core.imaging import decode_png, encode_png
from pipelines.core.palette import NUM_CLASSES

if TYPE_CHECKING:
    import tensorflow as tf

SCHEMA_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "val")
MANIFEST_NAME = "manifest.json"
Codec = Literal["raw", "png"]
Compression = Literal["none", "gzip", "zlib"]
CODECS: tuple[str, ...] = ("raw", "png")
COMPRESSIONS: tuple[str, ...] = ("none", "gzip", "zlib")
# PNG level 1 keeps most of the size win of level 6 at a fraction of the encode time.
PNG_COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class RecordFormat:
    """How patches are encoded inside records and how record files are compressed."""

    # raw/none by measurement (`landcover bench preprocess --all-formats`, README): the only
    # option within 2x of decode cost per scene, and the fastest to read; PNG halves the bytes
    # (1.5 -> 0.6 MB a patch) for ~4x the preprocessing CPU, GZIP costs more and saves less.
    codec: Codec = "raw"
    compression: Compression = "none"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}; valid: {', '.join(CODECS)}")
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"unknown compression {self.compression!r}; valid: {', '.join(COMPRESSIONS)}"
            )

    @property
    def tf_compression(self) -> str:
        """The ``compression_type`` string tf.data expects."""
        return {"none": "", "gzip": "GZIP", "zlib": "ZLIB"}[self.compression]

    @property
    def suffix(self) -> str:
        return {"none": ".tfrecord", "gzip": ".tfrecord.gz", "zlib": ".tfrecord.zlib"}[
            self.compression
        ]

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordFormat:
        return cls(codec=data["codec"], compression=data["compression"])


def _varint(value: int) -> bytes:
    """Protobuf base-128 varint (int64 fields encode negatives as 10-byte two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _feature_entry(name: str, feature: bytes) -> bytes:
    """One ``Features.feature`` map entry: ``{key = 1: name, value = 2: Feature}``."""
    return _field(1, _field(1, name.encode("utf-8")) + _field(2, feature))


def _int64_feature(value: int) -> bytes:
    # Feature.int64_list = 3 → Int64List.value = 1 (packed varints)
    return _field(3, _field(1, _varint(value)))


def _bytes_feature_header(size: int) -> bytes:
    """Everything of a ``Feature{bytes_list{value: <size bytes>}}`` but the bytes themselves."""
    inner = _varint(1 << 3 | 2) + _varint(size)  # BytesList.value = 1
    return _varint(1 << 3 | 2) + _varint(len(inner) + size) + inner  # Feature.bytes_list = 1


def _bytes_entry_parts(name: str, data: bytes | memoryview) -> list[bytes | memoryview]:
    """A bytes feature's map entry as [everything before the payload, payload]: the payload is
    copied once, into the final record by ``b"".join``, never into temporary proto objects."""
    feature_header = _bytes_feature_header(len(data))
    feature_size = len(feature_header) + len(data)
    entry_head = _field(1, name.encode("utf-8")) + _varint(2 << 3 | 2) + _varint(feature_size)
    entry_size = len(entry_head) + feature_size
    return [_varint(1 << 3 | 2) + _varint(entry_size) + entry_head + feature_header, data]


def serialize_example(ints: dict[str, int], blobs: dict[str, bytes | memoryview]) -> bytes:
    """A ``tf.train.Example`` in protobuf wire format, written directly.

    Byte-compatible with TensorFlow's parsers (``tf.io.parse_single_example``,
    ``tf.train.Example.FromString``) without importing TensorFlow: the Beam workers that write
    records then never load TF (seconds and hundreds of MB per worker process), and a patch's
    pixels are copied once into the record instead of through two intermediate proto objects.
    """
    parts: list[bytes | memoryview] = []
    for name, value in ints.items():
        parts.append(_feature_entry(name, _int64_feature(value)))
    for name, data in blobs.items():
        parts.extend(_bytes_entry_parts(name, data))
    features_size = sum(len(p) for p in parts)
    # Example.features = 1 → Features (its map entries, each field 1 of Features)
    return b"".join([_varint(1 << 3 | 2), _varint(features_size), *parts])


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


# ---- reader side (tf.data) -------------------------------------------------------------------


def read_manifest(records_uri: str) -> dict[str, Any]:
    """The dataset's manifest; it says how its records are encoded."""
    manifest_uri = storage.join(records_uri, MANIFEST_NAME)
    if not storage.exists(manifest_uri):
        raise FileNotFoundError(f"no {MANIFEST_NAME} under {records_uri}: run preprocess first")
    return json.loads(storage.read_text(manifest_uri))


def split_files(records_uri: str, split: str) -> list[str]:
    """The shard files of one split, sorted, e.g. ``train-00000-of-00004.tfrecord``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return storage.match(storage.join(records_uri, f"{split}-*-of-*"))


def parse_fn(fmt: RecordFormat, patch_size: int | None = None) -> Any:
    """A tf.function-able ``serialized → (image uint8 (H,W,3), ids uint8 (H,W))``."""
    import tensorflow as tf

    spec = {
        "height": tf.io.FixedLenFeature([], tf.int64),
        "width": tf.io.FixedLenFeature([], tf.int64),
        "image": tf.io.FixedLenFeature([], tf.string),
        "mask": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(serialized: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        example = tf.io.parse_single_example(serialized, spec)
        if fmt.codec == "png":
            image = tf.io.decode_png(example["image"], channels=3)
            ids = tf.io.decode_png(example["mask"], channels=1)[..., 0]
        else:
            shape = tf.stack([example["height"], example["width"]])
            image = tf.reshape(
                tf.io.decode_raw(example["image"], tf.uint8), tf.concat([shape, [3]], 0)
            )
            ids = tf.reshape(tf.io.decode_raw(example["mask"], tf.uint8), shape)
        if patch_size is not None:
            image = tf.ensure_shape(image, [patch_size, patch_size, 3])
            ids = tf.ensure_shape(ids, [patch_size, patch_size])
        return image, ids

    return parse


def ids_to_one_hot(class_ids: tf.Tensor) -> tf.Tensor:
    """Class ids (…, H, W) → one-hot float32 (…, H, W, 7): exactly what preprocess encoded."""
    import tensorflow as tf

    return tf.one_hot(tf.cast(class_ids, tf.int32), NUM_CLASSES, dtype=tf.float32)


def make_dataset(
    records_uri: str,
    split: str,
    *,
    deterministic: bool = False,
    shuffle_files: bool = True,
    seed: int = 0,
    cycle_length: int = 4,
) -> tf.data.Dataset:
    """Patches of one split as ``(image uint8, class ids uint8)``.

    Shards are read interleaved and parsed in parallel; ``deterministic`` fixes the order
    (tests, reproducible runs) at some cost in throughput.
    """
    import tensorflow as tf

    manifest = read_manifest(records_uri)
    fmt = RecordFormat.from_dict(manifest["record_format"])
    files = split_files(records_uri, split)
    if not files:
        raise FileNotFoundError(f"no {split} shards under {records_uri}")
    options = tf.data.Options()
    options.deterministic = deterministic
    file_ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle_files:
        file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    records = file_ds.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type=fmt.tf_compression),
        cycle_length=min(cycle_length, len(files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    parse = parse_fn(fmt, manifest.get("patch_size"))
    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
