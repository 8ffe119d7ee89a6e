"""The train flow's candidates step: configs checked before any work, what training left read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.layout import Layout
from flows.training.candidates import (
    FLOW_TRAINING,
    Candidate,
    candidate_configs,
    read_candidates,
)
from models.train.config import TrainConfig


def test_configs_put_each_arch_in_its_own_model_folder_over_the_flow_defaults() -> None:
    layout = Layout("/data/root")
    configs = candidate_configs(
        ["unet", "deeplabv3plus"],
        {"epochs": 3},
        layout=layout,
        dataset="spring",
        version="20240601-020000-ab",
    )
    assert list(configs) == ["unet", "deeplabv3plus"]
    for arch, config in configs.items():
        assert config.arch == arch
        assert config.data == "/data/root/records/spring"
        assert config.output == f"/data/root/models/{arch}/20240601-020000-ab"
        # the override wins over FLOW_TRAINING, which wins over TrainConfig's defaults
        assert config.epochs == 3 and config.batch_size == FLOW_TRAINING["batch_size"] == 8
        assert config.learning_rate == TrainConfig(data="d", output="o").learning_rate


@pytest.mark.parametrize(
    ("archs", "training", "error"),
    [
        ((), None, "archs is empty"),
        (("unet", "vgg"), None, "unknown architecture 'vgg'"),
        (("unet",), {"epochz": 1}, "unknown training option"),
        (("unet",), {"arch": "unet"}, "set by the flow"),
    ],
)
def test_bad_configs_fail_before_any_work(
    archs: tuple[str, ...], training: dict[str, int] | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        candidate_configs(archs, training, layout=Layout("/r"), dataset="d", version="v")


def test_a_candidate_reads_its_figures_from_the_training_metadata() -> None:
    config = TrainConfig(data="d", output="/m/unet/v", epochs=10)
    ran = Candidate("unet", config, {"val_miou": "0.5", "history": [{}] * 4, "wall_time_s": 9})
    assert (ran.model_uri, ran.training_val_miou, ran.epochs, ran.wall_time_s) == (
        "/m/unet/v",
        0.5,
        4,  # early stopping ended it after 4 of 10
        9.0,
    )
    bare = Candidate("unet", config)
    assert (bare.training_val_miou, bare.epochs, bare.wall_time_s) == (None, 10, None)


def test_read_candidates_names_a_run_that_left_no_metadata(
    prefect_harness: None, tmp_path: Path
) -> None:
    done = TrainConfig(data="d", output=str(tmp_path / "unet"))
    Path(done.output).mkdir()
    Path(done.output, "metadata.json").write_text(json.dumps({"val_miou": 0.25}))
    (candidate,) = read_candidates({"unet": done})
    assert candidate.arch == "unet" and candidate.training_val_miou == 0.25
    lost = TrainConfig(data="d", output=str(tmp_path / "resnet50_unet"))
    with pytest.raises(FileNotFoundError, match=r"resnet50_unet run completed without .*metadata"):
        read_candidates({"unet": done, "resnet50_unet": lost})


def test_a_preset_sets_its_values_between_the_flow_defaults_and_the_overrides() -> None:
    """``training: {"preset": "cpu"}`` trains as ``landcover train --preset cpu`` would."""
    from models.train.config import PRESETS

    (config,) = candidate_configs(
        ["unet"],
        {"preset": "cpu", "base_filters": 4},
        layout=Layout("/r"),
        dataset="d",
        version="v",
    ).values()
    cpu = PRESETS["cpu"]
    assert config.preset == "cpu"
    assert (config.crop_size, config.mixed_precision) == (cpu["crop_size"], cpu["mixed_precision"])
    assert config.base_filters == 4  # an explicit override beats the preset
    assert config.epochs == FLOW_TRAINING["epochs"]  # the preset does not set epochs
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        candidate_configs(
            ["unet"], {"preset": "tpu"}, layout=Layout("/r"), dataset="d", version="v"
        )
