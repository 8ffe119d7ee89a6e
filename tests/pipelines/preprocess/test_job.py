"""The preprocess Beam job: composite transforms on inline scenes, bad input, gs://, real scenes."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.util import assert_that, equal_to
from PIL import Image

from models.records import make_dataset
from pipelines import synth
from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import basename
from pipelines.core.records import RecordFormat
from pipelines.io import storage
from pipelines.io.records import decode_patch, read_manifest, split_files
from pipelines.preprocess import cli as preprocess_cli
from pipelines.preprocess import job as preprocess
from pipelines.preprocess.job import (
    PairScenes,
    ScenePair,
    SceneStats,
    ScenesToPatches,
    SplitPlan,
    SplitPlanFn,
    assign_split,
    run_preprocess,
    split_score,
)

# Independent of pipelines.core.palette on purpose: the DeepGlobe colours as the challenge lists
# them, looked up after thresholding each channel at 128.
DEEPGLOBE = {
    (0, 255, 255): "urban",
    (255, 255, 0): "agriculture",
    (255, 0, 255): "rangeland",
    (0, 255, 0): "forest",
    (0, 0, 255): "water",
    (255, 255, 255): "barren",
    (0, 0, 0): "unknown",
}
NAMES = list(DEEPGLOBE.values())


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _rgb(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def _packed(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2]


PACKED_COLORS = {int(_packed(np.array(color))): name for color, name in DEEPGLOBE.items()}


def independent_ids(mask_png: bytes) -> np.ndarray:
    """Class ids by thresholding and a lookup of colours (no palette module)."""
    packed = _packed((_rgb(mask_png) >= 128).astype(np.uint8) * 255)
    ids = np.full(packed.shape, NAMES.index("unknown"), np.uint8)
    for color, name in PACKED_COLORS.items():
        ids[packed == color] = NAMES.index(name)
    return ids


def independent_counts(mask_pngs: list[bytes]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for data in mask_pngs:
        values, n = np.unique(independent_ids(data), return_counts=True)
        counts.update({NAMES[v]: int(c) for v, c in zip(values, n, strict=True)})
    return {name: counts[name] for name in NAMES}


def write_scene(folder: Path, scene_id: str, image: np.ndarray, ids: np.ndarray) -> None:
    colors = np.array(list(DEEPGLOBE), np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{scene_id}_sat.jpg").write_bytes(_jpeg(image))
    (folder / f"{scene_id}_mask.png").write_bytes(_png(colors[ids]))


def tiny_scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    ids = rng.integers(0, 7, (height, width)).astype(np.uint8)
    return image, ids


def read_patches(records_uri: str, split: str, fmt: RecordFormat) -> list[dict[str, Any]]:
    """Every patch of a split, decoded without tf.data (scene id and origin included)."""
    import tensorflow as tf

    patches = []
    for uri in split_files(records_uri, split):
        with storage.local_copy(uri) as path:
            for raw in tf.data.TFRecordDataset(path, compression_type=fmt.tf_compression):
                patches.append(decode_patch(raw.numpy(), fmt))
    return patches


# ---- pure functions ------------------------------------------------------------------------------


def test_file_roles_and_pairing() -> None:
    assert preprocess.file_role("gs://b/raw/12_sat.jpg") == (
        "12",
        ("image", "gs://b/raw/12_sat.jpg"),
    )
    assert preprocess.file_role("/d/a_b_mask.png") == ("a_b", ("mask", "/d/a_b_mask.png"))
    assert preprocess.file_role("/d/12_sat.png") is None
    assert preprocess.file_role("/d/_sat.jpg") is None
    both = [("mask", "/d/1_mask.png"), ("image", "/d/1_sat.jpg")]
    assert preprocess.pair_files("1", both) == ScenePair("1", "/d/1_sat.jpg", "/d/1_mask.png")
    lone = preprocess.pair_files("2", [("mask", "/d/2_mask.png")])
    assert lone == ErrorRecord("/d/2_mask.png", "mask without image", "preprocess", "2")


def test_split_score_is_sha256_of_seed_and_id() -> None:
    digest = hashlib.sha256(b"0:10452").digest()
    assert split_score("10452", 0) == int.from_bytes(digest[:8], "big") / 2.0**64
    assert split_score("10452", 1) != split_score("10452", 0)


def _plan(ids: list[str], seed: int, val_fraction: float) -> SplitPlan:
    fn = SplitPlanFn(seed, val_fraction)
    halves = [fn.create_accumulator(), fn.create_accumulator()]
    for k, scene_id in enumerate(ids):  # two accumulators merged, as a runner would
        halves[k % 2] = fn.add_input(halves[k % 2], scene_id)
    return fn.extract_output(fn.merge_accumulators(halves))


def _splits(ids: list[str], seed: int, val_fraction: float) -> dict[str, str]:
    plan = _plan(ids, seed, val_fraction)
    return {scene_id: assign_split(scene_id, plan) for scene_id in ids}


def test_split_is_by_hash_and_stable() -> None:
    ids = [str(i) for i in range(400)]
    splits = _splits(ids, seed=3, val_fraction=0.25)
    assert splits == {i: "val" if split_score(i, 3) < 0.25 else "train" for i in ids}
    assert 70 < Counter(splits.values())["val"] < 130
    # The same id lands in the same split whatever else is in the dataset.
    subset = random.Random(0).sample(ids, 50)
    assert _splits(subset, 3, 0.25) == {i: splits[i] for i in subset}
    assert _splits(ids, 4, 0.25) != splits


def test_small_datasets_always_get_a_val_and_a_train_scene() -> None:
    rng = random.Random(1)
    for _ in range(300):
        ids = [f"s{rng.randrange(10**6)}" for _ in range(rng.randint(2, 5))]
        ids = list(dict.fromkeys(ids))
        if len(ids) < 2:
            continue
        fraction = rng.choice([0.01, 0.1, 0.5, 0.9, 0.99])
        counts = Counter(_splits(ids, rng.randrange(5), fraction).values())
        assert counts["val"] >= 1 and counts["train"] >= 1, (ids, fraction)
    assert _splits(["only"], 0, 0.99) == {"only": "train"}
    assert set(_splits(["a", "b", "c"], 0, 0.0).values()) == {"train"}
    assert set(_splits(["a", "b", "c"], 0, 1.0).values()) == {"val"}


def test_the_fallback_val_scene_is_the_lowest_score() -> None:
    ids = ["a", "b", "c"]
    fraction = min(split_score(i, 0) for i in ids) / 2  # the hash rule alone gives no val
    lowest = min(ids, key=lambda i: split_score(i, 0))
    assert _splits(ids, 0, fraction) == {i: "val" if i == lowest else "train" for i in ids}


# ---- composite transforms on inline scenes (TestPipeline + assert_that) --------------------------


def test_pair_scenes(test_pipeline) -> None:  # type: ignore[no-untyped-def]
    uris = [
        "/in/1_sat.jpg",
        "/in/1_mask.png",
        "/in/2_sat.jpg",
        "/in/3_mask.png",
        "/in/notes.txt",
        "/in/4_mask.png",
        "/in/4_sat.jpg",
    ]
    with test_pipeline() as p:
        out = p | beam.Create(uris) | PairScenes()
        assert_that(
            out["pairs"],
            equal_to(
                [
                    ScenePair("1", "/in/1_sat.jpg", "/in/1_mask.png"),
                    ScenePair("4", "/in/4_sat.jpg", "/in/4_mask.png"),
                ]
            ),
            label="pairs",
        )
        assert_that(
            out["errors"],
            equal_to(
                [
                    ErrorRecord("/in/2_sat.jpg", "image without mask", "preprocess", "2"),
                    ErrorRecord("/in/3_mask.png", "mask without image", "preprocess", "3"),
                ]
            ),
            label="errors",
        )


def test_scenes_to_patches(tmp_path: Path, test_pipeline) -> None:  # type: ignore[no-untyped-def]
    scenes = {"a": tiny_scene(0, 16, 24), "b": tiny_scene(1, 20, 16), "c": tiny_scene(2, 6, 8)}
    for scene_id, (image, ids) in scenes.items():
        write_scene(tmp_path, scene_id, image, ids)
    (tmp_path / "d_sat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "d_mask.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    pairs = [
        ScenePair(i, str(tmp_path / f"{i}_sat.jpg"), str(tmp_path / f"{i}_mask.png"))
        for i in "abcd"
    ]
    # Source pixels as the job must see them: the decoded JPEG, and the classes as drawn.
    source = {i: (_rgb((tmp_path / f"{i}_sat.jpg").read_bytes()), scenes[i][1]) for i in "ab"}
    plan = _plan(["a", "b", "c", "d"], 0, 0.5)
    split = {i: assign_split(i, plan) for i in "ab"}

    def crops(scene_id: str) -> list[tuple[str, int, int, bytes, bytes]]:
        image, ids = source[scene_id]
        height, width = ids.shape
        ys = sorted({0, height - 8, *range(0, height - 7, 8)})
        xs = sorted({0, width - 8, *range(0, width - 7, 8)})
        return [
            (
                scene_id,
                y,
                x,
                image[y : y + 8, x : x + 8].tobytes(),
                ids[y : y + 8, x : x + 8].tobytes(),
            )
            for y in ys
            for x in xs
        ]

    def as_tuple(serialized: bytes) -> tuple[str, int, int, bytes, bytes]:
        patch = decode_patch(serialized, RecordFormat())
        return (
            patch["scene_id"],
            patch["y"],
            patch["x"],
            patch["image"].tobytes(),
            patch["class_ids"].tobytes(),
        )

    def stats(scene_id: str) -> SceneStats:
        counts = np.bincount(scenes[scene_id][1].ravel(), minlength=7)
        return SceneStats(
            split[scene_id], len(crops(scene_id)), tuple(int(c) for c in counts), scene_id
        )

    with test_pipeline() as p:
        out = p | beam.Create(pairs) | ScenesToPatches(8, 0.5, 0, RecordFormat())
        for name in ("train", "val"):
            expected = [t for i in "ab" if split[i] == name for t in crops(i)]
            assert_that(
                out[name] | f"Decode{name}" >> beam.Map(as_tuple), equal_to(expected), label=name
            )
        assert_that(out["stats"], equal_to([stats("a"), stats("b")]), label="stats")
        assert_that(
            out["errors"] | beam.Map(lambda e: (e.scene_id, e.uri.rsplit("/", 1)[-1], e.reason)),
            equal_to(
                [
                    ("c", "c_sat.jpg", "scene is 6x8, smaller than the patch size 8"),
                    ("d", "d_sat.jpg", "not an image PIL can identify (corrupt or wrong format)"),
                ]
            ),
            label="errors",
        )
    # 16x24 → 2x3 patches; 20x16 → 3x2 (the last row flush with the edge at y=12).
    assert len(crops("a")) == 6 and [c[1] for c in crops("b")][::2] == [0, 8, 12]


# ---- the whole job -------------------------------------------------------------------------------


def _bad_corpus(folder: Path) -> dict[str, str]:
    """The bad inputs beside good scenes; returns {file name: expected reason (prefix)}."""
    good_jpeg = _jpeg(np.full((64, 64, 3), 120, np.uint8))
    good_mask = _png(np.zeros((64, 64, 3), np.uint8))
    files = {
        # corrupt JPEG: the start-of-image marker survives, the headers do not
        "corrupt_sat.jpg": good_jpeg[:2] + bytes(40) + good_jpeg[42:],
        "corrupt_mask.png": good_mask,
        "truncpng_sat.jpg": good_jpeg,
        "truncpng_mask.png": good_mask[: len(good_mask) // 2],
        "empty_sat.jpg": b"",
        "empty_mask.png": good_mask,
        "text_sat.jpg": good_jpeg,
        "text_mask.png": b"id,class\n1,urban\n",
        "sizes_sat.jpg": good_jpeg,
        "sizes_mask.png": _png(np.zeros((64, 72, 3), np.uint8)),
        "lonely_sat.jpg": good_jpeg,
        "orphan_mask.png": good_mask,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {
        "corrupt_sat.jpg": "not an image PIL can identify",
        "truncpng_mask.png": "cannot decode image",
        "empty_sat.jpg": "empty file",
        "text_mask.png": "not an image PIL can identify",
        "sizes_mask.png": "mask is 64x72 but its image",
        "lonely_sat.jpg": "image without mask",
        "orphan_mask.png": "mask without image",
    }


def test_bad_input_is_reported_and_every_good_scene_written(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    good = synth.write_scenes(str(raw), 3, size=128, seed=5, mask_noise=20.0)
    expected_errors = _bad_corpus(raw)
    out = tmp_path / "records"

    manifest = run_preprocess(str(raw), str(out), patch_size=64, val_fraction=0.3, seed=0)

    assert manifest["errors"] == len(expected_errors) == 7
    assert sum(manifest["scenes"].values()) == 3 and min(manifest["scenes"].values()) >= 1
    assert manifest["patches"] == {s: 4 * n for s, n in manifest["scenes"].items()}
    # Only good scenes, each in exactly one split, as many as the split counts say.
    listed = manifest["scene_ids"]["train"] + manifest["scene_ids"]["val"]
    assert sorted(listed) == sorted(good)
    assert {s: len(ids) for s, ids in manifest["scene_ids"].items()} == manifest["scenes"]
    masks = [(raw / f"{i}_mask.png").read_bytes() for i in good]
    assert manifest["class_pixels"] == independent_counts(masks)
    assert sum(manifest["class_pixels"].values()) == 3 * 128 * 128
    assert manifest["record_format"] == {"codec": "raw", "compression": "none"}
    assert manifest["options"]["input"] == str(raw) and manifest["options"]["seed"] == 0
    assert manifest["options"]["val_fraction"] == 0.3
    assert json.loads((out / "manifest.json").read_text()) == manifest

    lines = [
        json.loads(line)
        for path in sorted((out / "errors").glob("errors-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    got = {Path(e["uri"]).name: e["reason"] for e in lines}
    assert set(got) == set(expected_errors)
    for name, reason in expected_errors.items():
        assert got[name].startswith(reason), (name, got[name])
    assert {e["stage"] for e in lines} == {"preprocess"}

    written = Counter()
    for split in ("train", "val"):
        for patch in read_patches(str(out), split, RecordFormat()):
            written[(split, patch["scene_id"])] += 1
    assert sorted(scene for _, scene in written) == sorted(good)
    assert set(written.values()) == {4}


def test_wrong_input_uri_fails_before_beam_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_pipeline(*_: Any) -> None:
        raise AssertionError("Beam must not start for a wrong input")

    monkeypatch.setattr(preprocess, "create_pipeline", no_pipeline)
    out = str(tmp_path / "out")
    missing = str(tmp_path / "missing")
    assert preprocess_cli.main(["--input", missing, "--output", out]) == 1
    assert f"input folder does not exist: {missing}" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no scenes here")
    assert preprocess_cli.main(["--input", str(tmp_path / "empty"), "--output", out]) == 1
    assert "no scenes under" in capsys.readouterr().err
    assert not Path(out).exists()


def test_missing_bucket_fails_clearly(
    gcs_emulator: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--input", "gs://no-such-bucket-landcover/raw", "--output", str(tmp_path / "o")]
    assert preprocess_cli.main(argv) == 1
    assert "gs://no-such-bucket-landcover/raw" in capsys.readouterr().err


def test_invalid_options_are_rejected(tmp_path: Path) -> None:
    for argv in (["--val-fraction", "1.5"], ["--patch-size", "0"], ["--num-shards", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            preprocess_cli.main(["--input", str(tmp_path), "--output", str(tmp_path), *argv])
        assert exit_info.value.code == 2


def test_gcs_input_and_output_end_to_end(gcs_root: str, capsys: pytest.CaptureFixture[str]) -> None:
    raw, out = f"{gcs_root}/raw", f"{gcs_root}/records"
    ids = synth.write_scenes(raw, 3, size=96, seed=2)
    storage.write_bytes(f"{raw}/broken_sat.jpg", b"garbage")
    storage.write_bytes(f"{raw}/broken_mask.png", b"garbage")
    argv = ["--input", raw, "--output", out, "--patch-size", "48", "--codec", "png"]
    argv += ["--compression", "gzip", "--val-fraction", "0.34"]
    assert preprocess_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 errors" in printed and out in printed

    manifest = read_manifest(out)
    assert sum(manifest["scenes"].values()) == 3 and manifest["errors"] == 1
    assert sum(manifest["patches"].values()) == 12
    assert manifest["record_format"] == {"codec": "png", "compression": "gzip"}
    names = [basename(u) for u in storage.list_files(out)]
    assert "manifest.json" in names
    assert all(n.endswith(".tfrecord.gz") for n in names if n.startswith(("train-", "val-")))
    errors = storage.read_text(storage.match(f"{out}/errors/errors-*.jsonl")[0])
    assert json.loads(errors)["uri"] == f"{raw}/broken_sat.jpg"
    fmt = RecordFormat("png", "gzip")
    patches = read_patches(out, "train", fmt) + read_patches(out, "val", fmt)
    assert sorted({p["scene_id"] for p in patches}) == sorted(ids)
    masks = [storage.read_bytes(f"{raw}/{i}_mask.png") for i in ids]
    assert manifest["class_pixels"] == independent_counts(masks)


def test_fixed_shards_and_rerun_replaces_the_previous_dataset(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    synth.write_scenes(str(raw), 3, size=64, seed=1)
    run_preprocess(str(raw), str(out), patch_size=32, val_fraction=0.0, num_shards=3)
    assert [Path(f).name for f in split_files(str(out), "train")] == [
        f"train-0000{k}-of-00003.tfrecord" for k in range(3)
    ]
    assert len(read_patches(str(out), "train", RecordFormat())) == 12
    manifest = run_preprocess(str(raw), str(out), patch_size=32, val_fraction=0.0)
    assert manifest["scenes"] == {"train": 3, "val": 0}
    assert [Path(f).name for f in split_files(str(out), "train")] == [
        "train-00000-of-00001.tfrecord"
    ]
    # An empty split still has a readable shard, so readers need no special case.
    assert [Path(f).name for f in split_files(str(out), "val")] == ["val-00000-of-00001.tfrecord"]
    assert list(make_dataset(str(out), "val")) == []
    assert len(list(make_dataset(str(out), "train"))) == 12


@pytest.mark.slow
def test_multi_processing_direct_runner(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    ids = synth.write_scenes(str(raw), 6, size=64, seed=4)
    beam_args = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    manifest = run_preprocess(
        str(raw), str(out), patch_size=32, val_fraction=0.3, beam_args=beam_args
    )
    assert sum(manifest["scenes"].values()) == 6 and manifest["errors"] == 0
    patches = read_patches(str(out), "train", RecordFormat()) + read_patches(
        str(out), "val", RecordFormat()
    )
    assert len(patches) == 24 and {p["scene_id"] for p in patches} == set(ids)
    assert manifest["class_pixels"] == independent_counts(
        [(raw / f"{i}_mask.png").read_bytes() for i in ids]
    )


@pytest.mark.slow
def test_real_deepglobe_scenes(deepglobe_sample: Path, tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "records"
    manifest = run_preprocess(str(deepglobe_sample), str(out))

    ids = sorted(p.name.removesuffix("_sat.jpg") for p in deepglobe_sample.glob("*_sat.jpg"))
    assert len(ids) == 4
    assert manifest["patch_size"] == 612 and manifest["errors"] == 0
    assert sum(manifest["patches"].values()) == 64
    assert manifest["scenes"]["val"] >= 1 and sum(manifest["scenes"].values()) == 4
    masks = {i: (deepglobe_sample / f"{i}_mask.png").read_bytes() for i in ids}
    # These masks are exact palette colours (the sample's README says so): check that too, so
    # the threshold in the independent decode is not what makes the totals agree.
    for data in masks.values():
        assert set(np.unique(_packed(_rgb(data))).tolist()) <= set(PACKED_COLORS)
    assert manifest["class_pixels"] == independent_counts(list(masks.values()))
    assert list(manifest["class_pixels"]) == NAMES

    # The reader yields exactly the source scenes' pixels and classes, patch by patch.
    sources = {
        i: (_rgb((deepglobe_sample / f"{i}_sat.jpg").read_bytes()), independent_ids(masks[i]))
        for i in ids
    }
    seen = set()
    fmt = RecordFormat.from_dict(manifest["record_format"])
    for split in ("train", "val"):
        files = split_files(str(out), split)
        assert len(files) == 1  # one worker: one shard, so both readers see the same order
        dataset = make_dataset(str(out), split, deterministic=True, shuffle_files=False)
        raw_records = tf.data.TFRecordDataset(files, compression_type=fmt.tf_compression)
        for (image, class_ids), raw in zip(dataset, raw_records, strict=True):
            patch = decode_patch(raw.numpy(), fmt)
            y, x, scene_id = patch["y"], patch["x"], patch["scene_id"]
            source_image, source_ids = sources[scene_id]
            window = (slice(y, y + 612), slice(x, x + 612))
            assert np.array_equal(image.numpy(), source_image[window])
            assert np.array_equal(class_ids.numpy(), source_ids[window])
            seen.add((scene_id, y, x))
    assert len(seen) == 64
    assert {(y, x) for scene, y, x in seen if scene == ids[0]} == {
        (y, x) for y in (0, 612, 1224, 1836) for x in (0, 612, 1224, 1836)
    }


@pytest.mark.slow
def test_bench_reports_cost_ratio_and_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:

    from pipelines.bench import preprocess as bench_preprocess

    synth.write_scenes(str(tmp_path / "raw"), 2, size=96, seed=0)
    argv = ["--input", str(tmp_path / "raw"), "--scenes", "3", "--patch-size", "48"]
    assert bench_preprocess.main([*argv, "--repeats", "1", "--codec", "raw"]) == 0
    printed = capsys.readouterr().out
    assert "decode-only" in printed and "ratio vs decode" in printed
    [row] = [line for line in printed.splitlines() if line.startswith("| raw/none |")]
    # raw: 48*48*3 + 48*48 payload bytes plus a few dozen bytes of framing per patch
    assert row.split("|")[6].strip() == "0.009"
    assert row.split("|")[7].strip() == "0.04"  # 4 patches a scene
