"""A scene's files: exact masks and class ids, float16 probabilities, the mask written last."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.geo import PixelWindow
from pipelines.core.palette import CLASS_COLORS, CLASS_NAMES, NUM_CLASSES, encode_mask
from pipelines.io import storage
from pipelines.predict.options import PredictOptions
from pipelines.predict.outputs import PngSceneSink, encode_mask_png, encode_probabilities


def _probabilities(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    probabilities = rng.random((height, width, NUM_CLASSES), dtype=np.float32)
    return probabilities / probabilities.sum(-1, keepdims=True)


def _write_png_scene(
    scene_id: str, probabilities: np.ndarray, out: Path, options: PredictOptions
) -> list[str]:
    """The scene handed to the sink as two bands, as the streaming stitch does, then written."""
    height, width = probabilities.shape[:2]
    sink = PngSceneSink(scene_id, height, width, str(out), options)
    middle = height // 2
    for top, bottom in ((0, middle), (middle, height)):
        band = probabilities[top:bottom]
        window = PixelWindow(top, 0, bottom - top, width)
        sink(window, band.argmax(-1).astype(np.uint8), band, np.ones(band.shape[:2], bool))
    return sink.finish()


def test_mask_and_class_id_pngs_are_lossless_rgb_and_single_channel():
    ids = np.random.default_rng(0).integers(0, NUM_CLASSES, (23, 17)).astype(np.uint8)
    with Image.open(io.BytesIO(encode_mask_png(encode_mask(ids)))) as mask:
        assert mask.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(mask), CLASS_COLORS[ids])
    with Image.open(io.BytesIO(encode_mask_png(ids))) as classes:
        assert classes.mode == "L"
        np.testing.assert_array_equal(np.asarray(classes), ids)


def test_probabilities_are_stored_as_float16_with_the_class_names():
    probabilities = np.random.default_rng(1).random((5, 6, NUM_CLASSES), dtype=np.float32)
    with np.load(io.BytesIO(encode_probabilities(probabilities))) as data:
        assert data["probabilities"].dtype == np.float16
        np.testing.assert_allclose(data["probabilities"], probabilities, atol=5e-4)
        assert tuple(data["class_names"]) == CLASS_NAMES


def test_scene_files_are_written_with_the_mask_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    order: list[str] = []
    real_write = storage.write_bytes

    def recording_write(uri: str, data: bytes) -> None:
        order.append(Path(uri).name)
        real_write(uri, data)

    monkeypatch.setattr(storage, "write_bytes", recording_write)
    probabilities = _probabilities(20, 30, seed=2)
    options = PredictOptions(32, 8, class_ids=True, probabilities=True)
    written = _write_png_scene("a", probabilities, tmp_path, options)
    assert order == ["a_probs.npz", "a_classes.png", "a_mask.png"]
    assert written == [str(tmp_path / name) for name in order]
    class_ids = probabilities.argmax(-1)
    with Image.open(tmp_path / "a_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask), CLASS_COLORS[class_ids])
    with Image.open(tmp_path / "a_classes.png") as classes:
        np.testing.assert_array_equal(np.asarray(classes), class_ids)
    with np.load(tmp_path / "a_probs.npz") as data:
        np.testing.assert_allclose(data["probabilities"], probabilities, atol=5e-4)


def test_by_default_only_the_mask_is_written(tmp_path: Path):
    written = _write_png_scene("b", _probabilities(9, 11, seed=3), tmp_path, PredictOptions(32, 8))
    assert written == [str(tmp_path / "b_mask.png")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b_mask.png"]
