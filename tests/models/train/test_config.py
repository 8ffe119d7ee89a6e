"""TrainConfig: defaults, validation, and what an unset steps_per_epoch means."""

from __future__ import annotations

import subprocess
import sys

import pytest

from models.registry import ARCHITECTURES
from models.train.config import (
    ARCHS,
    PRESETS,
    TrainConfig,
    config_fingerprint_parts,
    default_steps_per_epoch,
)
from pipelines.core.manifest import Manifest
from pipelines.core.records import RecordFormat


def test_architectures_are_the_registry_s() -> None:
    assert ARCHS == ARCHITECTURES == ("unet", "resnet50_unet", "deeplabv3plus")


def test_validation_names_the_bad_option() -> None:
    TrainConfig(data="d", output="o", arch="resnet50_unet", freeze_encoder_epochs=1).validate()
    with pytest.raises(ValueError, match="unet has no encoder"):
        TrainConfig(data="d", output="o", arch="unet", freeze_encoder_epochs=1).validate()
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        TrainConfig(data="d", output="o", arch="vgg").validate()
    with pytest.raises(ValueError, match="cannot be combined"):
        TrainConfig(data="d", output="o", jit=True, deterministic=True).validate()
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(data="d", output="o", batch_size=0).validate()
    with pytest.raises(ValueError, match="crop_size must be >= 1"):
        TrainConfig(data="d", output="o", crop_size=0).validate()
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        TrainConfig(data="d", output="o", learning_rate=0.0).validate()
    with pytest.raises(ValueError, match="unknown strategy 'horovod'"):
        TrainConfig(data="d", output="o", strategy="horovod").validate()


def test_checkpoint_and_log_folders_default_under_the_output() -> None:
    config = TrainConfig(data="d", output="gs://b/models/unet/v1")
    assert config.checkpoint_root == "gs://b/models/unet/v1/checkpoints"
    assert config.log_root == "gs://b/models/unet/v1/logs"
    config.checkpoint_dir, config.log_dir = "/tmp/c", "/tmp/l"
    assert (config.checkpoint_root, config.log_root) == ("/tmp/c", "/tmp/l")


def _manifest(train: int, val: int) -> Manifest:
    return Manifest.build(
        patch_size=8,
        record_format=RecordFormat(),
        scene_ids={"train": ["a"], "val": ["b"]},
        patches={"train": train, "val": val},
    )


def test_default_steps_per_epoch_is_one_pass_over_train() -> None:
    assert default_steps_per_epoch(_manifest(10, 2), 4) == 2
    assert default_steps_per_epoch(_manifest(3, 2), 4) == 1
    with pytest.raises(ValueError, match="lacks"):
        Manifest.from_dict({})


def test_config_imports_neither_tensorflow_nor_keras() -> None:
    code = (
        "import sys, models.train.config as c; c.TrainConfig(data='d', output='o').validate(); "
        "sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_recipe_options_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        TrainConfig(data="d", output="o", lr_schedule="step").validate()
    with pytest.raises(ValueError, match="unknown loss 'ce'"):
        TrainConfig(data="d", output="o", loss="ce").validate()
    with pytest.raises(ValueError, match="one weight per class"):
        TrainConfig(data="d", output="o", class_weights="1,2").validate()
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        TrainConfig(data="d", output="o", weight_decay=-1.0).validate()
    with pytest.raises(ValueError, match="early_stopping_patience must be >= 1"):
        TrainConfig(data="d", output="o", early_stopping_patience=0).validate()
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        TrainConfig(data="d", output="o", preset="tpu").validate()
    TrainConfig(data="d", output="o", loss="focal+dice", class_weights="auto").validate()


def test_presets_set_their_fields_and_explicit_fields_win() -> None:
    cpu = TrainConfig.from_preset("cpu", data="d", output="o")
    assert (cpu.preset, cpu.crop_size, cpu.base_filters, cpu.mixed_precision) == (
        "cpu",
        PRESETS["cpu"]["crop_size"],
        PRESETS["cpu"]["base_filters"],
        False,
    )
    gpu = TrainConfig.from_preset("gpu", data="d", output="o", batch_size=16)
    assert gpu.mixed_precision and gpu.crop_size is None and gpu.batch_size == 16
    assert TrainConfig.from_preset(None, data="d", output="o") == TrainConfig(data="d", output="o")


def test_config_fingerprint_covers_what_changes_the_weights() -> None:
    base = config_fingerprint_parts(TrainConfig(data="d", output="o"))
    assert "learning_rate" in base and "loss" in base and "class_weights" in base
    for neutral in ("data", "output", "log_every", "epochs", "fresh", "version"):
        assert neutral not in base
    assert config_fingerprint_parts(TrainConfig(data="x", output="y", log_every=3)) == base
