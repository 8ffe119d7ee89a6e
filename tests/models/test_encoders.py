"""The ResNet50 encoder: ImageNet's input convention inside the model, the weights options
(Keras's cache, offline, local and gs:// paths), and batch norm frozen with the encoder."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from models import encoders
from models.architectures import build_model, get_encoder, set_encoder_trainable
from models.encoders import (
    ENCODER_NAME,
    RESNET50_IMAGENET_FILE,
    EncoderWeightsError,
    ImageNetCaffePreprocessing,
    keras_cache_dir,
)
from models.losses import DiceLoss
from models.resnet50_unet import RESNET50_BRIDGE, RESNET50_SKIPS

TAPS = (*RESNET50_SKIPS, RESNET50_BRIDGE)


def write_keras_h5(model: keras.Model, path: Path) -> None:
    """Write weights in the Keras 2 ``.h5`` layout, the format of Keras's ImageNet files."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.fixture(scope="module")
def reference_resnet50() -> keras.Model:
    """A random ResNet50 as Keras builds it, with batch-norm statistics made non-trivial so the
    feature comparison exercises the whole layer (not mean 0 / variance 1)."""
    keras.utils.set_random_seed(11)
    resnet = keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=(None, None, 3)
    )
    rng = np.random.default_rng(11)
    for layer in resnet.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.5, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
    return resnet


@pytest.fixture(scope="module")
def weights_file(reference_resnet50, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / RESNET50_IMAGENET_FILE
    write_keras_h5(reference_resnet50, path)
    return path


def image_0_1(height: int = 64, width: int = 48, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (1, height, width, 3)).astype("float32") / 255.0


def assert_encoder_weights_equal(model: keras.Model, reference: keras.Model) -> None:
    encoder = get_encoder(model)
    for layer in (layer for layer in reference.layers if layer.weights):
        for got, want in zip(
            encoder.get_layer(layer.name).get_weights(), layer.get_weights(), strict=True
        ):
            np.testing.assert_array_equal(got, want)


def test_preprocessing_layer_is_resnet50_preprocess_input_of_the_0_255_image() -> None:
    x = image_0_1(5, 7)
    expected = keras.applications.resnet50.preprocess_input(x * 255.0)
    actual = np.asarray(ImageNetCaffePreprocessing()(x))
    np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-4)
    with pytest.raises(ValueError, match="3 RGB channels"):
        ImageNetCaffePreprocessing()(np.zeros((1, 4, 4, 4), "float32"))


def test_encoder_features_equal_keras_resnet50_on_preprocessed_input(
    weights_file, save_load_roundtrip
) -> None:
    """Same weights file → the project's encoder on [0, 1] RGB gives Keras ResNet50's features on
    ``preprocess_input(image_0_255)``, in the built model and in its reloaded model.keras."""
    x = image_0_1()
    keras_resnet = keras.applications.ResNet50(
        include_top=False, weights=str(weights_file), input_shape=(None, None, 3)
    )
    taps = keras.Model(keras_resnet.input, [keras_resnet.get_layer(n).output for n in TAPS])
    expected = taps(keras.applications.resnet50.preprocess_input(x * 255.0), training=False)

    model = build_model("resnet50_unet", base_filters=2, encoder_weights=str(weights_file))
    reloaded = save_load_roundtrip(model, x)
    for candidate in (model, reloaded):
        features = get_encoder(candidate)(x, training=False)
        for name, got, want in zip(TAPS, features, expected, strict=True):
            scale = float(np.abs(want).max())
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


def test_imagenet_uses_the_keras_cache_under_keras_home(
    reference_resnet50, weights_file, tmp_path, monkeypatch, free_port
) -> None:
    cache = tmp_path / "keras-home" / "models"
    cache.mkdir(parents=True)
    (cache / RESNET50_IMAGENET_FILE).write_bytes(weights_file.read_bytes())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    # Any download attempt would fail: the file must come from the cache.
    monkeypatch.setattr(encoders, "RESNET50_IMAGENET_URL", f"http://127.0.0.1:{free_port()}/x.h5")
    assert keras_cache_dir() == str(cache)
    model = build_model("resnet50_unet", base_filters=2, encoder_weights="imagenet")
    assert_encoder_weights_equal(model, reference_resnet50)


def test_imagenet_offline_fails_at_once_naming_the_file_and_where_to_put_it(
    tmp_path, monkeypatch, free_port
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setattr(encoders, "RESNET50_IMAGENET_URL", f"http://127.0.0.1:{free_port()}/x.h5")
    started = time.monotonic()
    with pytest.raises(EncoderWeightsError) as raised:
        build_model("resnet50_unet", base_filters=2, encoder_weights="imagenet")
    elapsed = time.monotonic() - started
    message = str(raised.value)
    assert elapsed < 10, f"offline failure took {elapsed:.1f} s"
    assert RESNET50_IMAGENET_FILE in message
    assert str(tmp_path / "empty-home" / "models" / RESNET50_IMAGENET_FILE) in message
    assert "KERAS_HOME" in message and "--encoder-weights" in message
    assert not list((tmp_path / "empty-home" / "models").iterdir())  # no partial file left


@pytest.mark.parametrize("arch", ["resnet50_unet", "deeplabv3plus"])
def test_local_weights_path_loads_by_layer_name(reference_resnet50, weights_file, arch) -> None:
    model = build_model(arch, base_filters=2, encoder_weights=str(weights_file))
    assert_encoder_weights_equal(model, reference_resnet50)


def test_gcs_weights_path_is_copied_through_storage(
    reference_resnet50, weights_file, gcs_root
) -> None:
    from pipelines.io import storage

    uri = f"{gcs_root}/weights/{RESNET50_IMAGENET_FILE}"
    storage.upload_file(str(weights_file), uri)
    model = build_model("resnet50_unet", base_filters=2, encoder_weights=uri)
    assert_encoder_weights_equal(model, reference_resnet50)
    with pytest.raises(FileNotFoundError, match="encoder weights file not found"):
        build_model("resnet50_unet", base_filters=2, encoder_weights=f"{gcs_root}/missing.h5")


def test_a_file_that_is_not_resnet50_weights_is_refused(tmp_path) -> None:
    path = tmp_path / "other.weights.h5"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(path)
    with pytest.raises(EncoderWeightsError, match=r"could not load ResNet50 encoder weights"):
        build_model("resnet50_unet", base_filters=2, encoder_weights=str(path))


def _moving_means(model: keras.Model) -> dict[str, np.ndarray]:
    encoder = get_encoder(model)
    return {
        "encoder": np.asarray(encoder.get_layer("conv1_bn").moving_mean),
        "head": np.asarray(
            next(
                layer.moving_mean
                for layer in model.layers
                if isinstance(layer, keras.layers.BatchNormalization)
            )
        ),
    }


def train_step(model: keras.Model, optimizer: keras.optimizers.Optimizer, x, y) -> None:
    """What ``models.steps``' step does on one replica (eager here: tracing ResNet50 twice would
    cost minutes): a ``training=True`` forward pass, Dice gradients, an optimizer update."""
    variables = list(model.trainable_variables)
    with tf.GradientTape() as tape:
        loss = DiceLoss()(y, model(x, training=True))
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))


@pytest.mark.parametrize("arch", ["resnet50_unet", "deeplabv3plus"])
def test_frozen_encoder_keeps_its_batchnorm_statistics_until_unfrozen(arch) -> None:
    """Frozen, a training step leaves the encoder's BN moving statistics alone (inference mode)
    while the head's move; unfrozen, the encoder's move too."""
    keras.utils.set_random_seed(3)
    model = build_model(arch, base_filters=2)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(model.trainable_variables)  # all of them, before the freeze (as training)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 7, (2, 32, 32)), 7).astype("float32")

    set_encoder_trainable(model, False)
    before = _moving_means(model)
    encoder_kernel = np.asarray(get_encoder(model).get_layer("conv1_conv").kernel)
    train_step(model, optimizer, x, y)
    frozen = _moving_means(model)
    np.testing.assert_array_equal(frozen["encoder"], before["encoder"])
    np.testing.assert_array_equal(get_encoder(model).get_layer("conv1_conv").kernel, encoder_kernel)
    assert not np.array_equal(frozen["head"], before["head"])

    set_encoder_trainable(model, True)
    train_step(model, optimizer, x, y)
    assert not np.array_equal(_moving_means(model)["encoder"], frozen["encoder"])


def test_encoder_is_one_named_nested_model() -> None:
    model = build_model("resnet50_unet", base_filters=2)
    encoder = get_encoder(model)
    assert encoder.name == ENCODER_NAME
    assert isinstance(encoder.get_layer("imagenet_preprocessing"), ImageNetCaffePreprocessing)
