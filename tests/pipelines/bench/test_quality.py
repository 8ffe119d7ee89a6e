"""``landcover bench quality``: fold datasets training accepts, baselines, the whole command."""

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


def test_fold_dataset_is_one_training_verifies(tmp_path: Path) -> None:
    """Counted and checksummed like preprocess's: training refuses a dataset without them."""
    scenes = _scenes(tmp_path / "scenes", 3, 128)
    out = quality.write_fold_dataset(scenes[1:], scenes[0], str(tmp_path / "records"), 64)
    manifest = read_manifest(out)
    assert manifest.patches == {"train": 8, "val": 4}
    assert manifest.scene_ids["val"] == (scenes[0].scene_id,)
    assert sum(info.records for info in manifest.shards.values()) == 12
    assert verify_shards(out) == []


def test_baselines_score_the_held_out_scene(tmp_path: Path) -> None:
    scenes = _scenes(tmp_path / "scenes", 3, 96)
    confusions = quality.baseline_confusions(scenes[1:], scenes[0])
    assert set(confusions) == set(quality.BASELINES)
    for cm in confusions.values():
        assert cm.shape == (NUM_CLASSES, NUM_CLASSES) and cm.sum() == 96 * 96
    majority = confusions["majority"]
    assert np.count_nonzero(majority.sum(axis=0)) == 1  # one predicted class everywhere


@pytest.mark.slow
def test_the_command_trains_every_fold_and_writes_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two 612-px scenes: two folds of one patch each, one short unet run per fold."""
    write_scenes(str(tmp_path / "scenes"), 2, size=quality.PATCH, seed=4)
    argv = ["--scenes", str(tmp_path / "scenes"), "--output", str(tmp_path / "out")]
    argv += ["--archs", "unet", "--epochs", "1", "--steps-per-epoch", "2"]
    assert quality.main(argv) == 0
    report = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert report["folds"] == 2
    assert set(report["results"]) == {"unet", *quality.BASELINES}
    for result in report["results"].values():
        assert len(result["fold_miou"]) == 2
        assert 0.0 <= result["pixel_accuracy"] <= 1.0
    assert "mIoU (pooled)" in capsys.readouterr().out
