"""The TFRecord schema of a preprocessed dataset: record format and the Example wire format.

A patch is stored as its image pixels and its class ids. The one-hot mask is *not* stored: it is
exactly ``one_hot(ids)``, recovered in the reader, so a 612² patch carries 0.37 MB of mask
instead of 10.5 MB of float32 one-hot. The image is never re-encoded lossily: ``raw`` keeps the
decoded JPEG pixels as bytes, ``png`` stores them losslessly. Which codec and which file-level
compression a dataset used is recorded once, in its ``manifest.json`` (``record_format``), and the
reader takes it from there, so writer and reader cannot disagree.

Pure: the codecs live in ``pipelines.io.records``, the tf.data reader in ``models.records``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

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

    # raw/none by measurement (`landcover bench preprocess --all-formats`, docs/preprocess.md):
    # the only option within 2x of decode cost per scene, and the fastest to read; PNG halves the
    # bytes (1.5 -> 0.6 MB a patch) for ~4x the preprocessing CPU, GZIP costs more and saves less.
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
