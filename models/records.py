"""The tf.data reader of the record schema (``pipelines.core.records``).

Training, its benchmarks and tests read datasets through :func:`make_dataset`, which takes the
codec and compression from the dataset's manifest, so writer and reader cannot disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.core.palette import NUM_CLASSES
from pipelines.core.records import RecordFormat
from pipelines.io.records import read_manifest, split_files
from pipelines.io.tfio import register_filesystems

if TYPE_CHECKING:
    import tensorflow as tf


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
    fmt = manifest.record_format
    files = split_files(records_uri, split)
    register_filesystems(records_uri)  # s3://, az://, hdfs:// … through tensorflow-io
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
    parse = parse_fn(fmt, manifest.patch_size)
    return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE).with_options(options)
