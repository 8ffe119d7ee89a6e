"""The flows' option groups: validated against the stages' own options classes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from flows.options import (
    preprocess_options,
    recorded_options,
    train_config,
    train_config_of,
)
from models.train.config import TrainConfig
from pipelines.core.records import RecordFormat
from pipelines.core.tiling import PATCH_SIZE
from pipelines.preprocess.options import PreprocessOptions


def test_training_overrides_land_on_train_config_defaults() -> None:
    config = train_config({"epochs": "3", "crop_size": 128}, data="d", output="o", arch="unet")
    assert config == TrainConfig(data="d", output="o", arch="unet", epochs=3, crop_size=128)
    assert train_config(None, data="d", output="o", arch="unet") == TrainConfig("d", "o")


def test_training_rejects_unknown_reserved_and_invalid_values() -> None:
    with pytest.raises(ValueError, match=r"unknown training option\(s\) epochz; valid: .*epochs"):
        train_config({"epochz": 3}, data="d", output="o", arch="unet")
    with pytest.raises(ValueError, match="output are set by the flow"):
        train_config({"output": "x"}, data="d", output="o", arch="unet")
    with pytest.raises(ValueError, match="learning_rate"):
        train_config({"learning_rate": "fast"}, data="d", output="o", arch="unet")
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        train_config({"learning_rate": 0}, data="d", output="o", arch="unet")
    with pytest.raises(ValueError, match="unet has no encoder"):
        train_config({"freeze_encoder_epochs": 1}, data="d", output="o", arch="unet")
    with pytest.raises(ValueError, match="unknown architecture"):
        train_config(None, data="d", output="o", arch="vgg")


def test_a_train_config_survives_json() -> None:
    """What the train flow sends through Prefect (a train-model deployment run) comes back."""
    config = train_config({"epochs": 2}, data="d", output="o", arch="resnet50_unet")
    assert train_config_of(dataclasses.asdict(config)) == config
    with pytest.raises(ValueError, match="data"):
        train_config_of({"output": "o"})


def test_preprocessing_overrides_land_on_preprocess_options() -> None:
    options = preprocess_options(
        {"patch_size": 64, "record_format": {"codec": "png", "compression": "gzip"}},
        input_uri="raw",
        output_uri="records",
    )
    assert options == PreprocessOptions(
        "raw", "records", patch_size=64, record_format=RecordFormat("png", "gzip")
    )
    assert preprocess_options({}, input_uri="i", output_uri="o").patch_size == PATCH_SIZE
    with pytest.raises(ValueError, match="unknown preprocessing option"):
        preprocess_options({"codec": "png"}, input_uri="i", output_uri="o")
    with pytest.raises(ValueError, match="set by the flow"):
        preprocess_options({"input_uri": "x"}, input_uri="i", output_uri="o")
    with pytest.raises(ValueError, match="compression"):
        preprocess_options(
            {"record_format": {"codec": "raw", "compression": "zip"}}, input_uri="i", output_uri="o"
        )


def test_recorded_options_leave_out_where_records_are() -> None:
    options = preprocess_options({"seed": 4}, input_uri="/a/raw", output_uri="/a/records/x")
    recorded = recorded_options(options)
    assert recorded == {
        "patch_size": PATCH_SIZE,
        "val_fraction": 0.1,
        "seed": 4,
        "record_format": {"codec": "raw", "compression": "none"},
        "num_shards": "auto",
        "mask_kind": "auto",
        "label_map": None,
        "gsd": None,
        "target_gsd": None,
    }
    moved = preprocess_options({"seed": 4}, input_uri="/b/raw", output_uri="/b/records/x")
    assert recorded_options(moved) == recorded


def test_importing_the_options_loads_no_heavy_stack() -> None:
    code = (
        "import sys, flows.options\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'apache_beam', 'prefect')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
