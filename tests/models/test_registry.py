"""The registry: the one list of architecture names, Keras-free, and the Keras package name
every custom object is saved under."""

from __future__ import annotations

import subprocess
import sys

import keras
import pytest

from models.registry import (
    ARCHITECTURES,
    ENCODER_ARCHITECTURES,
    KERAS_PACKAGE,
    builder,
    check_architecture,
)


def test_names_and_unknown_names() -> None:
    assert ARCHITECTURES == ("unet", "resnet50_unet", "deeplabv3plus")
    assert ENCODER_ARCHITECTURES == ("resnet50_unet", "deeplabv3plus")
    assert check_architecture("unet") == "unet"
    with pytest.raises(
        ValueError, match="unknown architecture 'vgg'; valid: unet, resnet50_unet, deeplabv3plus"
    ):
        check_architecture("vgg")
    with pytest.raises(ValueError, match="unknown architecture"):
        builder("vgg")


def test_builders_build_the_named_architecture() -> None:
    for name in ARCHITECTURES:
        assert builder(name)(base_filters=2).name == name


def test_checking_a_name_imports_neither_tensorflow_nor_keras() -> None:
    code = (
        "import sys, models.registry as r; r.check_architecture('resnet50_unet'); "
        "sys.exit(bool({'tensorflow', 'keras'} & set(sys.modules)))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_custom_objects_are_saved_under_the_one_package_name() -> None:
    """Saved models name these ``landcover>…``: renaming one would break every model.keras."""
    from models.encoders import ImageNetCaffePreprocessing
    from models.keras_metrics import DeepGlobeMeanIoU
    from models.layers import CropLike, PadToMultiple, ResizeLike
    from models.losses import DiceLoss, dice_coefficient

    assert KERAS_PACKAGE == "landcover"
    custom = (PadToMultiple, CropLike, ResizeLike, ImageNetCaffePreprocessing, DiceLoss)
    for obj in (*custom, dice_coefficient, DeepGlobeMeanIoU):
        name = keras.saving.get_registered_name(obj)
        assert name == f"{KERAS_PACKAGE}>{obj.__name__}"
        assert keras.saving.get_registered_object(name) is obj
