"""The TFRecord shard sink: each shard's record count, size and checksum, counted as it is written.

Beam's ``WriteToTFRecord`` writes shards and returns only their names, so the manifest's shard
facts used to come from reading every finished shard back (a second pass over every byte, and a
second hash of it). :class:`WriteCountedTFRecords` is the same sink with a counting, hashing
file handle under the record framing: the bytes that reach storage are hashed once, on their way
there, and the step's output is ``(final shard URI, ShardInfo)`` instead of the bare URI.

How it fits Beam's file sink (``apache_beam.io.filebasedsink``), without changing its protocol:

- ``open`` returns a :class:`_CountingHandle` over the raw temporary file: the checksum is of
  the *stored* bytes (after compression), so a reader can check the file without decoding it;
- each writer's ``close`` returns ``(temporary path, ShardInfo)`` instead of the path;
- ``finalize_write`` gives Beam's own rename logic the paths (sorted, as Beam sorts them) and
  pairs each final name (``_get_final_name(i, n)``, the name Beam renames the i-th path to) with
  the facts its writer counted. Empty shards Beam creates for an empty split (``min_shards``)
  go through ``open_writer`` too, so they are counted like any other.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from typing import IO, Any

import apache_beam as beam
from apache_beam.io.filebasedsink import FileBasedSinkWriter
from apache_beam.io.filesystem import CompressedFile, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.iobase import Write, Writer
from apache_beam.io.tfrecordio import _TFRecordSink, _TFRecordUtil

from pipelines.core.manifest import ShardInfo


class _CountingHandle:
    """A write-only file over the raw shard: hashes and counts the stored bytes, counts records.

    ``compression`` other than UNCOMPRESSED puts Beam's compressor between the records and the
    hash, so what is hashed is exactly what is stored.
    """

    def __init__(self, raw: IO[bytes], compression: str) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.records = 0
        self.stream: Any = (
            self
            if compression == CompressionTypes.UNCOMPRESSED
            else CompressedFile(self._Stored(self), compression)  # type: ignore[arg-type]
        )
        self._closed = False

    class _Stored:
        """The stored side, for a compressor to write to."""

        mode = "wb"  # what CompressedFile asks of its file: writeable, at position 0
        closed = False

        def __init__(self, handle: _CountingHandle) -> None:
            self.handle = handle

        def tell(self) -> int:
            return self.handle.size

        def write(self, data: bytes) -> None:
            self.handle.write(data)

        def flush(self) -> None:
            self.handle.raw.flush()

        def close(self) -> None:  # the handle closes the raw file itself
            pass

    def write(self, data: bytes | memoryview) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.raw.write(data)

    def write_record(self, value: bytes) -> None:
        """One TFRecord: length, masked CRC of the length, the data, masked CRC of the data.

        Written piece by piece, not joined into one bytes object first (a copy of every record).
        """
        length = struct.pack("<Q", len(value))
        stream = self.stream
        stream.write(length + struct.pack("<I", _TFRecordUtil._masked_crc32c(length)))
        stream.write(value)
        stream.write(struct.pack("<I", _TFRecordUtil._masked_crc32c(value)))
        self.records += 1

    def flush(self) -> None:
        self.raw.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.stream is not self:
            self.stream.close()  # flushes the compressor's tail into write()
        self.raw.close()

    def info(self) -> ShardInfo:
        return ShardInfo(records=self.records, size=self.size, sha256=self.digest.hexdigest())


class _CountedWriter(Writer):
    """Beam's shard writer, whose ``close`` returns ``(temporary path, ShardInfo)``."""

    def __init__(self, writer: FileBasedSinkWriter) -> None:
        self.writer = writer

    def write(self, value: bytes) -> None:
        self.writer.write(value)

    def at_capacity(self) -> bool:
        return bool(self.writer.at_capacity())

    def close(self) -> tuple[str, ShardInfo]:
        path = self.writer.close()
        return path, self.writer.temp_handle.info()


class _CountedTFRecordSink(_TFRecordSink):
    def open(self, temp_path: str) -> _CountingHandle:
        raw = FileSystems.create(temp_path, self.mime_type, CompressionTypes.UNCOMPRESSED)
        return _CountingHandle(raw, self.compression_type)

    def write_encoded_record(self, file_handle: _CountingHandle, value: bytes) -> None:
        file_handle.write_record(value)

    def open_writer(self, init_result: Any, uid: str) -> _CountedWriter:
        return _CountedWriter(super().open_writer(init_result, uid))

    def pre_finalize(self, init_result: Any, writer_results: Any) -> Any:
        return super().pre_finalize(init_result, [path for path, _ in writer_results])

    def finalize_write(
        self, init_result: Any, writer_results: Any, pre_finalize_results: Any
    ) -> Iterator[str]:
        results = sorted(writer_results, key=lambda result: result[0])
        paths = [path for path, _ in results]
        for _ in super().finalize_write(init_result, paths, pre_finalize_results):
            pass  # Beam renames paths[i] to _get_final_name(i, n); drain it to do the renames
        count = len(results)
        for index, (_, info) in enumerate(results):
            # Beam types this step's output as str: the pair travels as JSON (see _decode).
            yield json.dumps([self._get_final_name(index, count), info.to_dict()])


def _decode(line: str) -> tuple[str, ShardInfo]:
    uri, info = json.loads(line)
    return uri, ShardInfo.from_dict(info, uri)


class WriteCountedTFRecords(beam.PTransform):
    """``WriteToTFRecord`` whose output is ``(shard URI, ShardInfo)`` per written shard."""

    def __init__(
        self,
        file_path_prefix: str,
        *,
        file_name_suffix: str = "",
        num_shards: int = 0,
        compression_type: str = CompressionTypes.UNCOMPRESSED,
    ) -> None:
        super().__init__()
        self._sink = _CountedTFRecordSink(
            file_path_prefix,
            coder=beam.coders.BytesCoder(),
            file_name_suffix=file_name_suffix,
            num_shards=num_shards,
            shard_name_template=None,
            compression_type=compression_type,
        )

    def expand(self, records: beam.PCollection[bytes]) -> beam.PCollection:
        return records | "Write" >> Write(self._sink) | "Shards" >> beam.Map(_decode)
