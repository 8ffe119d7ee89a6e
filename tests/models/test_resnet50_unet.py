"""ResNet50-U-Net: output size for any input size, the encoder taps, encoder weights."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from models.architectures import build_model, get_encoder
from models.encoders import ENCODER_NAME
from models.resnet50_unet import build_resnet50_unet, resnet50_decoder_filters
from pipelines.core.palette import NUM_CLASSES

# 612 is DeepGlobe's patch size and not a multiple of 32; 97x75 is odd in both directions.
SIZES = [(612, 612), (640, 640), (97, 75)]


@pytest.fixture(scope="module")
def tiny_resnet50_unet() -> keras.Model:
    # The encoder is full-size ResNet50 whatever base_filters says; only the decoder shrinks.
    return build_resnet50_unet(base_filters=4)


@pytest.fixture(scope="module")
def resnet50_weights_reference() -> keras.Model:
    """A randomly initialised ResNet50 as Keras applications builds it, to write weight files."""
    keras.utils.set_random_seed(7)
    return keras.applications.ResNet50(include_top=False, weights=None, input_shape=(None, None, 3))


def images(height: int, width: int, batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, height, width, 3)).astype("float32")


def assert_probabilities(y, batch: int, height: int, width: int) -> None:
    y = np.asarray(y)
    assert y.shape == (batch, height, width, NUM_CLASSES)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(("height", "width"), [*SIZES, (64, 64)])
def test_resnet50_unet_output_matches_input_size(tiny_resnet50_unet, height, width):
    y = tiny_resnet50_unet(images(height, width), training=False)
    assert_probabilities(y, 1, height, width)


def test_resnet50_unet_taps_the_stem_and_stages_2_to_5(tiny_resnet50_unet):
    encoder = get_encoder(tiny_resnet50_unet)
    assert encoder.name == ENCODER_NAME
    assert [tuple(out.shape[1:]) for out in encoder.outputs] == [
        (None, None, 64),  # conv1_relu, /2
        (None, None, 256),  # conv2_block3_out, /4
        (None, None, 512),  # conv3_block4_out, /8
        (None, None, 1024),  # conv4_block6_out, /16
        (None, None, 2048),  # conv5_block3_out, /32 (bridge)
    ]
    features = encoder(images(64, 96), training=False)
    assert [tuple(f.shape[1:3]) for f in features] == [(32, 48), (16, 24), (8, 12), (4, 6), (2, 3)]


def _write_legacy_h5(model: keras.Model, path) -> None:
    """Write weights in the Keras 2 ``.h5`` layout, the format of Keras's ImageNet files."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.mark.parametrize("file_name", ["encoder.weights.h5", "encoder_notop.h5"])
def test_encoder_weights_load_from_a_local_path(
    resnet50_weights_reference, tiny_resnet50_unet, tmp_path, file_name
):
    path = tmp_path / file_name
    if file_name.endswith(".weights.h5"):
        resnet50_weights_reference.save_weights(path)
    else:
        _write_legacy_h5(resnet50_weights_reference, path)
    model = build_model("resnet50_unet", base_filters=4, encoder_weights=str(path))
    loaded = get_encoder(model).get_weights()
    reference = resnet50_weights_reference.get_weights()
    assert len(loaded) == len(reference) == 318
    for got, want in zip(loaded, reference, strict=True):
        np.testing.assert_array_equal(got, want)
    # and they are not what a fresh random init would give
    fresh = get_encoder(tiny_resnet50_unet).get_weights()
    assert not np.array_equal(fresh[0], reference[0])


def test_missing_encoder_weights_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.weights.h5"
    with pytest.raises(FileNotFoundError, match=r"nowhere\.weights\.h5"):
        build_model("resnet50_unet", base_filters=4, encoder_weights=str(missing))


def test_decoder_widths_follow_base_filters() -> None:
    assert resnet50_decoder_filters(64) == (256, 128, 64, 32, 16)
    assert resnet50_decoder_filters(2) == (8, 4, 2, 1, 1)
