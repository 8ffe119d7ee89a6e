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
    SPECS,
    architectures_text,
    builder,
    check_architecture,
    parse_architectures,
    spec,
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


def test_each_spec_s_stride_and_encoder_are_its_built_model_s() -> None:
    """The spec is the one home of these facts: it must say what the builder really does."""
    from models.architectures import get_encoder
    from models.layers import PadToMultiple

    for architecture in SPECS:
        model = builder(architecture.name)(base_filters=2)
        pads = [layer for layer in model.layers if isinstance(layer, PadToMultiple)]
        assert [p.multiple for p in pads] == [architecture.stride], architecture.name
        assert (get_encoder(model) is not None) == architecture.has_encoder


def test_spec_texts_and_lists() -> None:
    assert spec("unet").describe_widths(16) == (
        "base_filters=16 (encoder/decoder widths [16, 32, 64, 128, 256])"
    )
    assert "ASPP/decoder width 64, stride-4 projection 12" in spec("deeplabv3plus").describe_widths(
        16
    )
    assert architectures_text() == "unet | resnet50_unet | deeplabv3plus"
    assert parse_architectures(None) == ARCHITECTURES
    assert parse_architectures(" unet, deeplabv3plus ") == ("unet", "deeplabv3plus")
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        parse_architectures("unet,vgg")
    with pytest.raises(ValueError, match="no architecture named"):
        parse_architectures(",")
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        spec("vgg")


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
