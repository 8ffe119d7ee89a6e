"""The preprocess job end to end: bad input, wrong input, gs://, shards and reruns, real scenes.

The pieces have their own tests: the split rule in ``tests/pipelines/core/test_splits.py``,
pairing, per-scene work, Beam steps, options and CLI beside this file.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.records import make_dataset
from pipelines import synth
from pipelines.core.manifest import Manifest
from pipelines.core.naming import basename
from pipelines.core.records import RecordFormat
from pipelines.io import storage
from pipelines.io.records import (
    decode_patch,
    read_manifest,
    resolve_dataset,
    split_files,
    verify_shards,
)
from pipelines.preprocess import cli as preprocess_cli
from pipelines.preprocess import job as preprocess
from pipelines.preprocess.job import run_preprocess
from pipelines.preprocess.options import PreprocessOptions


def read_patches(records_uri: str, split: str, fmt: RecordFormat) -> list[dict[str, Any]]:
    """Every patch of a split, decoded without tf.data (scene id and origin included)."""
    import tensorflow as tf

    patches = []
    for uri in split_files(records_uri, split):
        with storage.local_copy(uri) as path:
            for raw in tf.data.TFRecordDataset(path, compression_type=fmt.tf_compression):
                patches.append(decode_patch(raw.numpy(), fmt))
    return patches


# ---- the whole job -------------------------------------------------------------------------------


def _bad_corpus(folder: Path, scene_files) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The bad inputs beside good scenes; returns {file name: expected reason (prefix)}."""
    good_jpeg = scene_files.jpeg(np.full((64, 64, 3), 120, np.uint8))
    good_mask = scene_files.png(np.zeros((64, 64, 3), np.uint8))
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
        "sizes_mask.png": scene_files.png(np.zeros((64, 72, 3), np.uint8)),
        "lonely_sat.jpg": good_jpeg,
        "orphan_mask.png": good_mask,
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {
        "corrupt_sat.jpg": "cannot open as a raster",
        "truncpng_mask.png": "cannot decode: ",
        "empty_sat.jpg": "empty file",
        "text_mask.png": "cannot open as a raster",
        "sizes_mask.png": "mask is 64x72 but its image",
        "lonely_sat.jpg": "image without mask",
        "orphan_mask.png": "mask without image",
    }


def test_bad_input_is_reported_and_every_good_scene_written(tmp_path: Path, scene_files) -> None:  # type: ignore[no-untyped-def]
    independent_counts = scene_files.independent_counts
    raw = tmp_path / "raw"
    good = synth.write_scenes(str(raw), 3, size=128, seed=5, mask_noise=20.0)
    expected_errors = _bad_corpus(raw, scene_files)
    out = tmp_path / "records"

    options = PreprocessOptions(str(raw), str(out), patch_size=64, val_fraction=0.3, seed=0)
    written_manifest = run_preprocess(options)
    assert isinstance(written_manifest, Manifest) and written_manifest == read_manifest(str(out))
    manifest = written_manifest.to_dict()

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
    # The run wrote a version under the root and published it.
    version = Path(resolve_dataset(str(out)))
    assert version.parent == out / "versions" and (out / "CURRENT").exists()
    assert json.loads((version / "manifest.json").read_text()) == manifest
    assert verify_shards(str(out)) == []

    lines = [
        json.loads(line)
        for path in sorted((version / "errors").glob("errors-*.jsonl"))
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


def test_invalid_options_fail_before_beam_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pipeline(*_: Any) -> None:
        raise AssertionError("Beam must not start for invalid options")

    monkeypatch.setattr(preprocess, "create_pipeline", no_pipeline)
    with pytest.raises(ValueError, match="patch_size must be positive"):
        run_preprocess(str(tmp_path), str(tmp_path / "out"), patch_size=0)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        run_preprocess(PreprocessOptions(str(tmp_path), str(tmp_path / "out"), val_fraction=2.0))
    with pytest.raises(TypeError, match="not both"):
        run_preprocess(PreprocessOptions(str(tmp_path), "o"), "o")  # type: ignore[call-overload]


def test_gcs_input_and_output_end_to_end(
    gcs_root: str, capsys: pytest.CaptureFixture[str], scene_files
) -> None:  # type: ignore[no-untyped-def]
    independent_counts = scene_files.independent_counts
    raw, out = f"{gcs_root}/raw", f"{gcs_root}/records"
    ids = synth.write_scenes(raw, 3, size=96, seed=2)
    storage.write_bytes(f"{raw}/broken_sat.jpg", b"garbage")
    storage.write_bytes(f"{raw}/broken_mask.png", b"garbage")
    argv = ["--input", raw, "--output", out, "--patch-size", "48", "--codec", "png"]
    argv += ["--compression", "gzip", "--val-fraction", "0.34"]
    assert preprocess_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "1 errors" in printed and out in printed

    manifest = read_manifest(out).to_dict()
    assert sum(manifest["scenes"].values()) == 3 and manifest["errors"] == 1
    assert sum(manifest["patches"].values()) == 12
    assert manifest["record_format"] == {"codec": "png", "compression": "gzip"}
    version = resolve_dataset(out)
    assert version.startswith(f"{out}/versions/") and storage.exists(f"{out}/CURRENT")
    names = [basename(u) for u in storage.list_files(version)]
    assert "manifest.json" in names
    assert all(n.endswith(".tfrecord.gz") for n in names if n.startswith(("train-", "val-")))
    assert verify_shards(out) == []
    errors = storage.read_text(storage.match(f"{version}/errors/errors-*.jsonl")[0])
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
    first = resolve_dataset(str(out))
    assert [Path(f).name for f in split_files(str(out), "train")] == [
        f"train-0000{k}-of-00003.tfrecord" for k in range(3)
    ]
    assert len(read_patches(str(out), "train", RecordFormat())) == 12
    first_manifest = read_manifest(first)
    # The keyword form of run_preprocess still works; options left out take their defaults.
    manifest = run_preprocess(str(raw), str(out), patch_size=32, val_fraction=0.0).to_dict()
    assert manifest["options"]["num_shards"] == "auto" and manifest["options"]["seed"] == 0
    assert manifest["scenes"] == {"train": 3, "val": 0}
    assert [Path(f).name for f in split_files(str(out), "train")] == [
        "train-00000-of-00001.tfrecord"
    ]
    # An empty split still has a readable shard, so readers need no special case.
    assert [Path(f).name for f in split_files(str(out), "val")] == ["val-00000-of-00001.tfrecord"]
    assert list(make_dataset(str(out), "val")) == []
    assert len(list(make_dataset(str(out), "train"))) == 12
    # The re-run wrote a new version and switched to it; the first is intact, not deleted.
    assert resolve_dataset(str(out)) != first
    assert read_manifest(first) == first_manifest and verify_shards(first) == []
    assert verify_shards(str(out)) == []


@pytest.mark.slow
def test_multi_processing_direct_runner(tmp_path: Path, scene_files) -> None:  # type: ignore[no-untyped-def]
    independent_counts = scene_files.independent_counts
    raw, out = tmp_path / "raw", tmp_path / "out"
    ids = synth.write_scenes(str(raw), 6, size=64, seed=4)
    beam_args = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
    options = PreprocessOptions(str(raw), str(out), patch_size=32, val_fraction=0.3)
    manifest = run_preprocess(options, beam_args=beam_args).to_dict()
    assert sum(manifest["scenes"].values()) == 6 and manifest["errors"] == 0
    patches = read_patches(str(out), "train", RecordFormat()) + read_patches(
        str(out), "val", RecordFormat()
    )
    assert len(patches) == 24 and {p["scene_id"] for p in patches} == set(ids)
    assert manifest["class_pixels"] == independent_counts(
        [(raw / f"{i}_mask.png").read_bytes() for i in ids]
    )


@pytest.mark.slow
def test_real_deepglobe_scenes(deepglobe_sample: Path, tmp_path: Path, scene_files) -> None:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    independent_counts, independent_ids = (
        scene_files.independent_counts,
        scene_files.independent_ids,
    )
    _packed, _rgb = scene_files.packed, scene_files.rgb
    PACKED_COLORS, NAMES = scene_files.packed_colors, scene_files.names  # noqa: N806
    out = tmp_path / "records"
    manifest = run_preprocess(PreprocessOptions(str(deepglobe_sample), str(out))).to_dict()

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
