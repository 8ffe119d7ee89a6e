"""The serving API: load a model.keras from local or gs://, predict probabilities for uint8
tiles with the training normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import normalization
from models.architectures import build_model
from models.serving import load_model, predict_tiles
from pipelines.core.palette import NUM_CLASSES
from pipelines.io import storage


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    model = build_model("unet", base_filters=2)
    path = tmp_path_factory.mktemp("serving") / "model.keras"
    model.save(path)
    return path, model


def _tiles(count: int = 2, size: int = 20) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def test_predict_tiles_normalises_like_training(saved_model) -> None:
    path, model = saved_model
    loaded = load_model(str(path))
    tiles = _tiles()
    probabilities = predict_tiles(loaded, tiles)
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (2, 20, 20, NUM_CLASSES)
    expected = np.asarray(model(normalization.normalize_image(tiles), training=False))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)


def test_predict_tiles_refuses_other_shapes(saved_model) -> None:
    model = load_model(str(saved_model[0]))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        predict_tiles(model, _tiles()[0])


def test_loads_from_gcs(saved_model, gcs_root: str) -> None:
    uri = f"{gcs_root}/models/unet/v1/model.keras"
    storage.upload_file(str(saved_model[0]), uri)
    assert load_model(uri).name == "unet"


def _asymmetric_model():
    """A fixed conv with an asymmetric kernel: its output changes under every flip and turn."""
    import keras

    image = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(NUM_CLASSES, 3, padding="same", use_bias=False)
    logits = conv(image)
    model = keras.Model(image, keras.layers.Softmax()(logits * 8.0))
    kernel = np.arange(3 * 3 * 3 * NUM_CLASSES, dtype=np.float32).reshape(3, 3, 3, NUM_CLASSES)
    conv.set_weights([np.sin(kernel)])
    return model


@pytest.mark.parametrize("tta", ["flip", "d4"])
def test_tta_averages_the_inverted_predictions_of_each_transform(tta: str) -> None:
    model = _asymmetric_model()
    tiles = _tiles(count=2, size=24)
    x = normalization.normalize_image(tiles)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(np.ascontiguousarray(batch)))

    def lr(a: np.ndarray) -> np.ndarray:
        return a[:, :, ::-1]

    def ud(a: np.ndarray) -> np.ndarray:
        return a[:, ::-1]

    flips = [run(x), lr(run(lr(x))), ud(run(ud(x))), ud(lr(run(lr(ud(x)))))]
    if tta == "flip":
        expected = np.mean(flips, axis=0)
    else:
        turns = []
        for k in range(4):
            turns.append(np.rot90(run(np.rot90(x, k, axes=(1, 2))), -k, axes=(1, 2)))
            turns.append(lr(np.rot90(run(np.rot90(lr(x), k, axes=(1, 2))), -k, axes=(1, 2))))
        expected = np.mean(turns, axis=0)
    plain = predict_tiles(model, tiles)
    got = predict_tiles(model, tiles, tta=tta)
    assert not np.allclose(plain, got, atol=1e-3)  # the model is not flip-invariant
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(predict_tiles(model, tiles, tta="none"), run(x), atol=1e-6)


def test_tta_refuses_unknown_modes(saved_model) -> None:
    with pytest.raises(ValueError, match="tta must be one of none, flip, d4"):
        predict_tiles(load_model(str(saved_model[0])), _tiles(), tta="rot")


@pytest.mark.parametrize("damage", ["truncated", "flipped bytes", "empty"])
def test_a_damaged_model_file_is_called_corrupt_not_missing(saved_model, tmp_path, damage) -> None:
    from models.architectures import CorruptModelError

    data = saved_model[0].read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped bytes":
        middle = len(data) // 2
        data = (
            data[:middle]
            + bytes(b ^ 0xFF for b in data[middle : middle + 2000])
            + data[middle + 2000 :]
        )
    else:
        data = b""
    path = tmp_path / "model.keras"
    path.write_bytes(data)
    with pytest.raises(CorruptModelError, match=rf"^corrupt model file {path}: .+") as raised:
        load_model(str(path))
    assert "File not found" not in str(raised.value)


def test_a_damaged_model_on_gcs_is_named_by_its_uri(saved_model, gcs_root: str) -> None:
    from models.architectures import CorruptModelError

    uri = f"{gcs_root}/models/unet/v2/model.keras"
    storage.write_bytes(uri, saved_model[0].read_bytes()[:1000])
    with pytest.raises(CorruptModelError, match=f"corrupt model file {uri}: "):
        load_model(uri)


def test_a_missing_model_file_is_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_model(str(tmp_path / "nothing.keras"))


def test_loading_is_safe_mode(tmp_path) -> None:
    """A model.keras carrying code (a Lambda layer's bytecode) is refused, not executed."""
    import keras

    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    with pytest.raises(ValueError, match="safe_mode"):
        load_model(str(path))
