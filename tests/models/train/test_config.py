"""TrainConfig: defaults, validation, and what an unset steps_per_epoch means."""

from __future__ import annotations

import subprocess
import sys

import pytest

from models.registry import ARCHITECTURES
from models.train.config import ARCHS, TrainConfig, default_steps_per_epoch
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
