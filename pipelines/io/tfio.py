"""TensorFlow's own filesystems beyond GCS: the one place that imports ``tensorflow_io``.

Since TensorFlow 2.6 the ``s3://``, ``az://``, ``hdfs://``, ``http(s)://``, ``oss://`` and
``viewfs://`` filesystems of ``tf.io.gfile`` live in tensorflow-io, registered when its package
is imported (GCS stays built into TensorFlow). The tf.data input path calls
:func:`register_filesystems` before it opens shards, so TensorFlow-side I/O — reading
TFRecord shards, writing checkpoints and TensorBoard logs — works on those stores too.

Image decoding is not done here: every raster format is decoded by GDAL
(``pipelines.io.imaging``, ``pipelines.io.raster_read``), so no format has two decoders.
The rest of the pipeline (manifests, ``model.keras``, outputs) goes through
``pipelines.io.storage`` (Beam's filesystems: local and ``gs://``), so a dataset on ``s3://``
also needs Beam's S3 filesystem for those files.
"""

from __future__ import annotations

import functools

# Schemes TensorFlow serves without tensorflow-io.
BUILTIN_SCHEMES: frozenset[str] = frozenset({"", "file", "gs", "ram"})


def scheme_of(uri: str) -> str:
    """``s3://b/k`` → ``s3``; a plain path → ``""``."""
    return uri.split("://", 1)[0].lower() if "://" in uri else ""


@functools.cache
def _import_tensorflow_io() -> None:
    import tensorflow_io  # noqa: F401  (registers the filesystems on import)


def register_filesystems(uri: str) -> None:
    """Make TensorFlow able to open ``uri``: imports tensorflow-io for schemes TF lacks.

    A no-op for local paths and ``gs://`` (TensorFlow's own), so the common path pays nothing.
    Raises ``ValueError`` naming the scheme when even tensorflow-io does not serve it.
    """
    scheme = scheme_of(uri)
    if scheme in BUILTIN_SCHEMES:
        return
    import tensorflow as tf

    _import_tensorflow_io()
    if scheme not in tf.io.gfile.get_registered_schemes():
        raise ValueError(f"TensorFlow has no filesystem for {scheme}:// (in {uri})")
