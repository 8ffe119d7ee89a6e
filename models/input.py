"""The training input: TFRecord shards → augmented, normalised, one-hot batches.

``make_input(records_uri, split, InputConfig(...))`` builds on ``records.make_dataset`` (shards
read interleaved, records parsed in parallel) and adds, in this order:

1. shuffle of decoded uint8 patches (cheap to hold: 1.5 MB per 612² patch with its ids);
2. repeat (training runs for a number of steps, not until the data runs out);
3. per-patch random crop (``crop_size``, for CPU runs on small inputs) and augmentation;
4. batch (``drop_remainder`` for training, so every step has the same static shape);
5. normalisation (``models.normalization.normalize_image``, the one serving uses too) and
   one-hot recovery (``records.ids_to_one_hot``) on whole batches, vectorised;
6. prefetch.

Augmentation is the dihedral group of the square: a random left-right flip followed by a
random rotation by k·90°, which reaches all 8 orientations with equal probability. Overhead
imagery has no "up", so each is as plausible as the original; unlike arbitrary rotations or
scaling they move pixels exactly (no interpolation), so class ids stay valid labels. Image and
ids are stacked into one (H, W, 4) uint8 tensor and transformed together, so they cannot drift.
Then, on the image only (``color_jitter`` j > 0): brightness ±j, contrast and saturation
×[1 − j, 1 + j], each drawn per patch; scenes differ in sun angle, haze and sensor
calibration, and the mask does not depend on any of it. (Scale jitter is not offered: resizing
masks needs nearest-neighbour resampling that distorts thin classes at these resolutions.)

Randomness is stateless: a patch's crop and orientation derive from the seed (the trainer
changes it every epoch) and a 64-bit fingerprint of the patch itself. So they do not depend on
the order patches arrive in, on parallelism or on which worker reads which shard; and no
element counter is needed (``enumerate`` or ``scan`` would add a node that tf.distribute's
FILE auto-sharding cannot walk past). The cost: within one epoch, a patch seen twice (an epoch
longer than one pass) is augmented the same way both times. With ``deterministic=True`` the
order is fixed too, so a seed reproduces the exact batches, which lets a resumed run skip the
batches it already trained on and see the same ones after them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models import records
from models.normalization import normalize_image
from pipelines.io.records import split_files

if TYPE_CHECKING:
    import tensorflow as tf


@dataclass(frozen=True)
class InputConfig:
    """How one split is turned into batches (defaults: a training input)."""

    batch_size: int = 8
    training: bool = True
    augment: bool = True
    color_jitter: float = 0.0  # brightness ±j, contrast/saturation ×[1-j, 1+j]; with augment
    crop_size: int | None = None
    shuffle_buffer: int = 64
    repeat: bool = True
    deterministic: bool = False
    seed: int = 0
    cycle_length: int = 4
    prefetch: int | None = None  # None → AUTOTUNE

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.color_jitter < 1:
            raise ValueError(f"color_jitter must be in [0, 1), got {self.color_jitter}")
        if self.crop_size is not None and self.crop_size < 1:
            raise ValueError(f"crop_size must be >= 1, got {self.crop_size}")


def stack_pair(image: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
    """(H, W, 3) image + (H, W) ids → one (H, W, 4) uint8 tensor transformed as a unit."""
    import tensorflow as tf

    return tf.concat([image, ids[..., tf.newaxis]], axis=-1)


def unstack_pair(stacked: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return stacked[..., :3], stacked[..., 3]


def random_orientation(stacked: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One of the 8 flips/rotations of a square, chosen by a stateless ``seed`` (shape (2,))."""
    import tensorflow as tf

    draws = tf.random.stateless_uniform([2], seed=seed, minval=0, maxval=8, dtype=tf.int32)
    flip = draws[0] % 2 == 1
    stacked = tf.cond(flip, lambda: tf.reverse(stacked, axis=[1]), lambda: stacked)
    return tf.image.rot90(stacked, k=draws[1] % 4)


def random_crop(stacked: tf.Tensor, size: int, seed: tf.Tensor) -> tf.Tensor:
    """A ``size``² window at a stateless random position (the whole patch if it is smaller)."""
    import tensorflow as tf

    shape = tf.shape(stacked)
    size_h = tf.minimum(size, shape[0])
    size_w = tf.minimum(size, shape[1])
    return tf.image.stateless_random_crop(stacked, tf.stack([size_h, size_w, 4]), seed=seed)


def color_jitter(image: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """uint8 RGB → uint8 RGB with random brightness, contrast and saturation (stateless)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=3)
    pixels = tf.cast(image, tf.float32) / 255.0
    pixels = tf.image.stateless_random_brightness(pixels, strength, seed=seeds[0])
    pixels = tf.image.stateless_random_contrast(pixels, 1 - strength, 1 + strength, seed=seeds[1])
    pixels = tf.image.stateless_random_saturation(pixels, 1 - strength, 1 + strength, seed=seeds[2])
    return tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 1.0) * 255.0), tf.uint8)


def _output_side(side: int | None, crop_size: int | None) -> int | None:
    """The static side length after an optional crop (None when unknown)."""
    if side is None:
        return None
    return side if crop_size is None else min(side, crop_size)


def content_key(stacked: tf.Tensor) -> tf.Tensor:
    """A 64-bit fingerprint of a patch's pixels and ids (int64 scalar)."""
    import tensorflow as tf

    fingerprint = tf.fingerprint(tf.reshape(stacked, [1, -1]))[0]  # (8,) uint8
    return tf.bitcast(fingerprint, tf.int64)


def _element_seed(config: InputConfig, key: tf.Tensor, salt: int) -> tf.Tensor:
    """A stateless seed (2,) from the run's seed, the purpose ``salt`` and the patch's key."""
    import tensorflow as tf

    return tf.stack([tf.constant(config.seed * 8 + salt, tf.int64), key])


def transform_fn(config: InputConfig):  # type: ignore[no-untyped-def]
    """``(image, ids) → (image, ids)``: the per-patch crop and augmentation."""

    def transform(image, ids):  # type: ignore[no-untyped-def]
        if config.crop_size is None and not config.augment:
            return image, ids
        import tensorflow as tf

        height = _output_side(image.shape[0], config.crop_size)
        width = _output_side(image.shape[1], config.crop_size)
        stacked = stack_pair(image, ids)
        key = content_key(stacked)
        if config.crop_size is not None:
            stacked = random_crop(stacked, config.crop_size, _element_seed(config, key, 1))
        if config.augment:
            stacked = random_orientation(stacked, _element_seed(config, key, 2))
        if height is not None and height == width:
            # Crops and quarter turns of a square keep its shape; say so for the static graph.
            stacked = tf.ensure_shape(stacked, [height, width, 4])
        image, ids = unstack_pair(stacked)
        if config.augment and config.color_jitter > 0:
            image = color_jitter(image, config.color_jitter, _element_seed(config, key, 3))
        return image, ids

    return transform


def to_model_inputs(images: tf.Tensor, ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 images and class ids → (normalised float32 images, one-hot float32 masks)."""
    return normalize_image(images), records.ids_to_one_hot(ids)


def shard_policy_for(num_files: int, num_workers: int):  # type: ignore[no-untyped-def]
    """FILE sharding when every worker gets whole shards, else DATA (each reads all, keeps 1/n).

    FILE is far cheaper but fails outright when there are fewer shards than workers; preprocess
    writes enough shards for real datasets, tiny test sets may not have them.
    """
    import tensorflow as tf

    policy = tf.data.experimental.AutoShardPolicy
    return policy.FILE if num_files >= num_workers > 1 else policy.DATA


def make_input(
    records_uri: str, split: str, config: InputConfig, *, num_workers: int = 1
) -> tf.data.Dataset:
    """Batches of ``(image float32 (B,H,W,3) in [0,1], one-hot float32 (B,H,W,7))``.

    ``config.batch_size`` is the *global* batch when the dataset is handed to
    ``strategy.experimental_distribute_dataset`` (which splits it across replicas).
    """
    import tensorflow as tf

    files = split_files(records_uri, split)
    dataset = records.make_dataset(
        records_uri,
        split,
        deterministic=config.deterministic,
        shuffle_files=config.training,
        seed=config.seed,
        cycle_length=config.cycle_length,
    )
    if config.training and config.shuffle_buffer > 1:
        dataset = dataset.shuffle(
            config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True
        )
    if config.repeat:
        dataset = dataset.repeat()
    if config.training and (config.augment or config.crop_size is not None):
        dataset = dataset.map(
            transform_fn(config),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=config.deterministic,
        )
    dataset = dataset.batch(
        config.batch_size,
        drop_remainder=config.training,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=config.deterministic,
    )
    dataset = dataset.map(
        to_model_inputs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=config.deterministic
    )
    dataset = dataset.prefetch(tf.data.AUTOTUNE if config.prefetch is None else config.prefetch)
    options = tf.data.Options()
    options.deterministic = config.deterministic
    options.experimental_distribute.auto_shard_policy = shard_policy_for(len(files), num_workers)
    return dataset.with_options(options)


def release_in_background(holder: list[Any]) -> None:
    """Drop the iterators in ``holder`` (the caller's last references) on a daemon thread.

    Destroying a tf.data iterator of this input sometimes blocks its caller for seconds
    (measured: 8.2 s in one of eight destructions in a loop of 12 s iterators; 3-11 s at the
    end of training epochs, 20-60 s in 25-minute runs), waiting on the iterator's background
    threads; a training run destroys one at every epoch end, where that wait was taken out of
    its minutes budget. The destruction itself is only a release of resources nobody uses
    any more, so it happens off the training thread: the caller puts its iterator in a list,
    deletes its own name for it and hands the list over (the thread empties it).
    """
    threading.Thread(target=holder.clear, name="landcover-iterator-release", daemon=True).start()
