"""``landcover bench quality``: datasets training accepts, the fixed 512 split, baselines,
resampling for ``--target-gsd``, and both suites end to end on synthetic scenes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipelines.bench import quality
from pipelines.core.palette import NUM_CLASSES
from pipelines.io.records import read_manifest, verify_shards
from pipelines.synth import write_scenes


def _scenes(folder: Path, count: int, size: int) -> list[quality.Scene]:
    write_scenes(str(folder), count, size=size, seed=4)
    return quality.load_scenes(str(folder))


def test_dataset_is_one_training_verifies(tmp_path: Path) -> None:
    """Counted and checksummed like preprocess's: training refuses a dataset without them."""
    scenes = _scenes(tmp_path / "scenes", 3, 128)
    out = quality.write_dataset(
        {"train": scenes[1:], "val": scenes[:1]}, str(tmp_path / "records"), 64, gsd=2.390625
    )
    manifest = read_manifest(out)
    assert manifest.patches == {"train": 8, "val": 4}
    assert manifest.scene_ids["val"] == (scenes[0].scene_id,)
    assert sum(info.records for info in manifest.shards.values()) == 12
    assert manifest.gsd is not None and manifest.gsd.metres == 2.390625
    assert verify_shards(out) == []


def test_the_512_split_is_fixed_by_scene_order() -> None:
    image, ids = np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2), np.uint8)
    scenes = [quality.Scene(f"{i:04d}", image, ids) for i in reversed(range(161))]
    split = quality.split_512(scenes)
    assert [len(split[k]) for k in ("train", "val", "test")] == [112, 16, 33]
    assert [s.scene_id for s in split["test"][:3]] == ["0000", "0005", "0010"]
    assert [s.scene_id for s in split["val"][:2]] == ["0001", "0011"]
    every = [s.scene_id for part in split.values() for s in part]
    assert sorted(every) == sorted(s.scene_id for s in scenes)  # each scene in one split


def test_baselines_score_the_held_out_scene(tmp_path: Path) -> None:
    scenes = _scenes(tmp_path / "scenes", 3, 96)
    confusions = quality.baseline_confusions(scenes[1:], scenes[0])
    assert set(confusions) == set(quality.BASELINES)
    for cm in confusions.values():
        assert cm.shape == (NUM_CLASSES, NUM_CLASSES) and cm.sum() == 96 * 96
    majority = confusions["majority"]
    assert np.count_nonzero(majority.sum(axis=0)) == 1  # one predicted class everywhere


def test_resampling_keeps_the_majority_class_and_comes_back_by_nearest() -> None:
    ids = np.zeros((8, 8), np.uint8)
    ids[:4, :4] = 3
    ids[0, 0:2] = ids[1, 0] = 5  # 3 of the first 2×2 block: the mode of each block wins
    image = np.full((8, 8, 3), 100, np.uint8)
    coarse = quality.resample_scene(quality.Scene("s", image, ids), 2.0)
    assert coarse.ids.shape == (4, 4) and coarse.image.shape == (4, 4, 3)
    assert coarse.ids[0, 0] == 5 and coarse.ids[1, 1] == 3 and coarse.ids[3, 3] == 0
    np.testing.assert_array_equal(coarse.image, 100)
    back = quality.upsample_ids(coarse.ids, (8, 8))
    np.testing.assert_array_equal(back[2:4, 2:4], 3)
    np.testing.assert_array_equal(back[4:, 4:], 0)


@pytest.mark.slow
def test_the_512_suite_trains_within_its_budget_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_scenes(str(tmp_path / "scenes"), 10, size=64, seed=4)
    argv = ["--suite", "512", "--scenes", str(tmp_path / "scenes"), "--output", str(tmp_path / "o")]
    argv += ["--max-minutes", "0.4", "--epochs", "1", "--patch", "64"]
    argv += ["--train", "base_filters=4"]
    argv += ["--train", "crop_size=32", "--train", "bn_recalibration_batches=2"]
    assert quality.main(argv) == 0
    report = json.loads((tmp_path / "o" / "quality.json").read_text())
    assert [len(report["split"][k]) for k in ("train", "val", "test")] == [7, 1, 2]
    assert set(report["results"]) == {"unet", *quality.BASELINES}
    assert report["results"]["unet"]["train_minutes"] <= 0.4 * 1.25  # the trainer's budget
    assert np.asarray(report["confusion"]["unet"]).sum() == 2 * 64 * 64  # the test pixels
    out = capsys.readouterr().out
    assert "mIoU" in out and "confusion of unet" in out


@pytest.mark.slow
def test_the_512_suite_trains_at_a_coarser_gsd_and_scores_tta_beside(tmp_path: Path) -> None:
    write_scenes(str(tmp_path / "scenes"), 10, size=64, seed=4)
    argv = ["--suite", "512", "--scenes", str(tmp_path / "scenes"), "--output", str(tmp_path / "o")]
    argv += ["--max-minutes", "0.3", "--epochs", "1", "--target-gsd", "4.78125", "--tta", "flip"]
    argv += ["--train", "base_filters=4"]
    argv += ["--train", "crop_size=16", "--train", "bn_recalibration_batches=2"]
    assert quality.main(argv) == 0
    report = json.loads((tmp_path / "o" / "quality.json").read_text())
    assert report["train_gsd_m"] == 4.78125
    assert set(report["results"]) == {"unet", "unet+flip", *quality.BASELINES}
    manifest = json.loads((tmp_path / "o" / "records" / "manifest.json").read_text())
    assert manifest["patch_size"] == 32  # the 64² scenes at twice their GSD
    for row in ("unet", "unet+flip"):  # scored on the scenes' own 64² grid
        assert np.asarray(report["confusion"][row]).sum() == 2 * 64 * 64


def test_a_target_gsd_finer_than_the_scenes_is_refused(tmp_path: Path) -> None:
    write_scenes(str(tmp_path / "scenes"), 10, size=64, seed=4)
    argv = ["--suite", "512", "--scenes", str(tmp_path / "scenes"), "--output", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="finer than the suite's scenes"):
        quality.main([*argv, "--target-gsd", "1.0"])


@pytest.mark.slow
def test_the_full_suite_rotates_the_hold_out_at_a_coarser_gsd(tmp_path: Path) -> None:
    write_scenes(str(tmp_path / "scenes"), 2, size=128, seed=4)
    argv = [
        "--suite",
        "full",
        "--scenes",
        str(tmp_path / "scenes"),
        "--output",
        str(tmp_path / "o"),
    ]
    argv += ["--max-minutes", "0.3", "--target-gsd", "1.0", "--patch", "64"]
    argv += ["--train", "base_filters=4"]
    argv += ["--train", "crop_size=32", "--train", "bn_recalibration_batches=2"]
    assert quality.main(argv) == 0
    report = json.loads((tmp_path / "o" / "quality.json").read_text())
    assert report["folds"] == 2 and report["train_gsd_m"] == 1.0
    for result in report["results"].values():
        assert len(result["fold_miou"]) == 2
    # scored on the scenes' own grid: every pixel of both held-out scenes
    assert np.asarray(report["confusion"]["unet"]).sum() == 2 * 128 * 128
