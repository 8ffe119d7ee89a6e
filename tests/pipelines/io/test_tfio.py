"""tensorflow-io's role: TensorFlow filesystems beyond GCS, imported only when needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.io.tfio import register_filesystems, scheme_of


def test_scheme_of() -> None:
    assert [scheme_of(u) for u in ("/data/x", "gs://b/x", "S3://b/x", "az://c/x")] == [
        "",
        "gs",
        "s3",
        "az",
    ]


def test_local_and_gcs_need_no_tensorflow_io() -> None:
    code = (
        "import sys; from pipelines.io.tfio import register_filesystems as r; "
        "r('/tmp/x'); r('gs://b/x'); sys.exit('tensorflow_io' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_s3_and_azure_become_tensorflow_filesystems() -> None:
    import tensorflow as tf

    register_filesystems("s3://bucket/records/train-00000-of-00001.tfrecord")
    register_filesystems("az://account/container/records")
    assert {"s3", "az", "hdfs", "http"} <= set(tf.io.gfile.get_registered_schemes())
    with pytest.raises(ValueError, match=r"no filesystem for nope://"):
        register_filesystems("nope://b/x")
