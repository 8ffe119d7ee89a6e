"""The training input: augmentation keeps image and mask aligned, shared normalisation, order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from models import records
from models.input import InputConfig, make_input, shard_policy_for
from models.normalization import normalize_image
from pipelines.core.manifest import Manifest
from pipelines.core.palette import NUM_CLASSES
from pipelines.core.records import RecordFormat
from pipelines.io.records import encode_patch, write_manifest

PATCH = 16
CLASS_LEVEL = 36  # red channel = class id × 36: a pixel's color says its class


def coded_patch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A patch whose pixels encode their class (red) and their original row/column (green/blue).

    After any flip or rotation the red channel must still match the mask pixel by pixel, and
    the green/blue fields must be one of the 8 symmetries of the original coordinate grid.
    """
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, NUM_CLASSES, (PATCH, PATCH), dtype=np.uint8)
    rows, cols = np.mgrid[0:PATCH, 0:PATCH].astype(np.uint8)
    image = np.stack([ids * CLASS_LEVEL, rows * 8 + 3, cols * 8 + 5], axis=-1).astype(np.uint8)
    return image, ids


def write_records(root: Path, n_train: int = 12, n_val: int = 5, shards: int = 3) -> Path:
    """Records in preprocess's schema, written directly (the input is tested on its own)."""
    fmt = RecordFormat(codec="png")
    patches = {"train": n_train, "val": n_val}
    root.mkdir(parents=True, exist_ok=True)
    index = 0
    for split, count in patches.items():
        for shard in range(shards):
            path = root / f"{split}-{shard:05d}-of-{shards:05d}{fmt.suffix}"
            with tf.io.TFRecordWriter(str(path)) as writer:
                for i in range(shard, count, shards):
                    image, ids = coded_patch(index)
                    index += 1
                    writer.write(encode_patch(f"s{i}", 0, 0, image, ids, fmt))
    manifest = Manifest.build(
        patch_size=PATCH,
        record_format=fmt,
        scene_ids={split: [f"s{i}" for i in range(count)] for split, count in patches.items()},
        patches=patches,
    )
    write_manifest(str(root), manifest)
    return root


@pytest.fixture(scope="module")
def coded_records(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_records(tmp_path_factory.mktemp("coded")))


def originals(records_uri: str, split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    dataset = records.make_dataset(records_uri, split, deterministic=True, shuffle_files=False)
    return [(image.numpy(), ids.numpy()) for image, ids in dataset]


def dihedral(array: np.ndarray) -> list[np.ndarray]:
    """The 8 flips/rotations of a square array (over its first two axes)."""
    out = []
    for flipped in (array, array[:, ::-1]):
        out.extend(np.rot90(flipped, k, axes=(0, 1)) for k in range(4))
    return out


def batches(dataset: tf.data.Dataset, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


def test_augmented_image_and_mask_stay_aligned(coded_records: str) -> None:
    grid = coded_patch(0)[0][..., 1:]
    orientations = set()
    got = []
    for seed in range(4):  # the trainer changes the seed every epoch
        config = InputConfig(batch_size=4, augment=True, deterministic=True, seed=seed)
        got += batches(make_input(coded_records, "train", config), 3)
    for images, masks in got:
        assert images.dtype == np.float32 and masks.dtype == np.float32
        assert images.shape == (4, PATCH, PATCH, 3) and masks.shape == (4, PATCH, PATCH, 7)
        pixels = np.rint(images * 255).astype(np.uint8)
        # The class the red channel encodes is the class of the mask, pixel for pixel.
        np.testing.assert_array_equal(pixels[..., 0] // CLASS_LEVEL, masks.argmax(-1))
        np.testing.assert_array_equal(masks.sum(-1), 1.0)
        for patch in pixels:
            matches = [i for i, g in enumerate(dihedral(grid)) if np.array_equal(patch[..., 1:], g)]
            assert len(matches) == 1, "not a flip/rotation of the original patch"
            orientations.add(matches[0])
    assert orientations == set(range(8)), "all 8 orientations should occur in 4 x 12 patches"


def test_random_crop_keeps_alignment_and_is_a_window(coded_records: str) -> None:
    config = InputConfig(batch_size=4, augment=False, crop_size=8, deterministic=True, seed=1)
    offsets = set()
    for images, masks in batches(make_input(coded_records, "train", config), 6):
        assert images.shape == (4, 8, 8, 3) and masks.shape == (4, 8, 8, 7)
        pixels = np.rint(images * 255).astype(np.int64)
        np.testing.assert_array_equal(pixels[..., 0] // CLASS_LEVEL, masks.argmax(-1))
        rows, cols = (pixels[..., 1] - 3) // 8, (pixels[..., 2] - 5) // 8
        for r, c in zip(rows, cols, strict=True):  # contiguous, unrotated window
            np.testing.assert_array_equal(r, r[0, 0] + np.arange(8)[:, None].repeat(8, 1))
            np.testing.assert_array_equal(c, c[0, 0] + np.arange(8)[None, :].repeat(8, 0))
            offsets.add((int(r[0, 0]), int(c[0, 0])))
    assert len(offsets) > 5, "crop positions should vary"


def test_crop_larger_than_patch_keeps_the_patch(coded_records: str) -> None:
    config = InputConfig(batch_size=2, augment=False, crop_size=64, deterministic=True)
    images, masks = batches(make_input(coded_records, "train", config), 1)[0]
    assert images.shape == (2, PATCH, PATCH, 3) and masks.shape == (2, PATCH, PATCH, 7)


def test_normalisation_is_the_shared_one_and_val_is_untouched(coded_records: str) -> None:
    config = InputConfig(batch_size=2, training=False, repeat=False, deterministic=True)
    got = batches(make_input(coded_records, "val", config), 10)
    assert [len(x) for x, _ in got] == [2, 2, 1], "val keeps its last partial batch"
    images = np.concatenate([x for x, _ in got])
    masks = np.concatenate([y for _, y in got])
    expected = originals(coded_records, "val")
    np.testing.assert_array_equal(images, np.stack([normalize_image(i) for i, _ in expected]))
    np.testing.assert_array_equal(
        masks, np.stack([records.ids_to_one_hot(ids).numpy() for _, ids in expected])
    )


def test_deterministic_order_repeats_with_the_seed(coded_records: str) -> None:
    def run(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        config = InputConfig(batch_size=3, deterministic=True, seed=seed, shuffle_buffer=8)
        return batches(make_input(coded_records, "train", config), 8)

    first, again, other = run(5), run(5), run(6)
    for (x1, y1), (x2, y2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_training_input_repeats_past_the_end(coded_records: str) -> None:
    config = InputConfig(batch_size=5, deterministic=True)
    # 12 train patches, batches of 5 with drop_remainder: the repeat keeps it going.
    assert len(batches(make_input(coded_records, "train", config), 7)) == 7


def test_shard_policy() -> None:
    policy = tf.data.experimental.AutoShardPolicy
    assert shard_policy_for(num_files=4, num_workers=2) == policy.FILE
    assert shard_policy_for(num_files=1, num_workers=2) == policy.DATA
    assert shard_policy_for(num_files=4, num_workers=1) == policy.DATA


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        InputConfig(batch_size=0)
    with pytest.raises(ValueError, match="crop_size"):
        InputConfig(crop_size=0)


def test_color_jitter_changes_the_image_only_and_keeps_alignment(coded_records: str) -> None:
    """Jitter on: the same orientation (mask) as without it; the image's colours change, and
    its positions still line up with the mask (the jittered image is a function of the
    un-jittered one, pixel for pixel)."""
    plain = InputConfig(batch_size=4, augment=True, deterministic=True, seed=3)
    jittered = InputConfig(batch_size=4, augment=True, color_jitter=0.3, deterministic=True, seed=3)
    changed = 0
    for (image_a, mask_a), (image_b, mask_b) in zip(
        batches(make_input(coded_records, "train", plain), 3),
        batches(make_input(coded_records, "train", jittered), 3),
        strict=True,
    ):
        np.testing.assert_array_equal(mask_a, mask_b)
        a = np.rint(image_a * 255).astype(np.int64)
        b = np.rint(image_b * 255).astype(np.int64)
        changed += int(np.any(a != b))
        for patch_a, patch_b in zip(a, b, strict=True):
            # Same input colour → same output colour within a patch: no pixel moved.
            seen: dict[tuple[int, ...], tuple[int, ...]] = {}
            for pa, pb in zip(patch_a.reshape(-1, 3), patch_b.reshape(-1, 3), strict=True):
                assert seen.setdefault(tuple(pa), tuple(pb)) == tuple(pb)
    assert changed == 3


def test_color_jitter_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="color_jitter"):
        InputConfig(color_jitter=1.0)


def test_release_in_background_drops_the_iterator_on_another_thread() -> None:
    import threading
    import weakref

    from models.input import release_in_background

    finalized_on: list[str] = []

    class Resource:
        def __del__(self) -> None:
            finalized_on.append(threading.current_thread().name)

    resource = Resource()
    alive = weakref.ref(resource)
    holder = [resource]
    del resource
    release_in_background(holder)
    for thread in threading.enumerate():
        if thread.name == "landcover-iterator-release":
            thread.join(timeout=10)
    assert alive() is None
    assert holder == []
    assert finalized_on == ["landcover-iterator-release"]
