"""A scene's files: exact masks and class ids, float16 probabilities, the mask written last."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core import tiling
from pipelines.core.palette import CLASS_COLORS, CLASS_NAMES, NUM_CLASSES, encode_mask
from pipelines.io import storage
from pipelines.predict.outputs import (
    OutputOptions,
    encode_mask_png,
    encode_probabilities,
    write_scene_outputs,
)


def _blender(height: int, width: int, seed: int) -> tiling.TileBlender:
    """A one-tile scene whose stitch is exactly the given probabilities."""
    rng = np.random.default_rng(seed)
    probabilities = rng.random((height, width, NUM_CLASSES), dtype=np.float32)
    probabilities /= probabilities.sum(-1, keepdims=True)
    blender = tiling.TileBlender(height, width, 32, 8, NUM_CLASSES)
    blender.add(0, probabilities)
    return blender


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
    blender = _blender(20, 30, seed=2)
    options = OutputOptions(str(tmp_path), 32, 8, write_class_ids=True, write_probabilities=True)
    written = write_scene_outputs("a", blender, options)
    assert order == ["a_probs.npz", "a_classes.png", "a_mask.png"]
    assert written == [str(tmp_path / name) for name in order]
    class_ids = blender.probabilities().argmax(-1)
    with Image.open(tmp_path / "a_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask), CLASS_COLORS[class_ids])
    with Image.open(tmp_path / "a_classes.png") as classes:
        np.testing.assert_array_equal(np.asarray(classes), class_ids)
    with np.load(tmp_path / "a_probs.npz") as data:
        np.testing.assert_allclose(data["probabilities"], blender.probabilities(), atol=5e-4)


def test_by_default_only_the_mask_is_written(tmp_path: Path):
    written = write_scene_outputs("b", _blender(9, 11, seed=3), OutputOptions(str(tmp_path), 32, 8))
    assert written == [str(tmp_path / "b_mask.png")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b_mask.png"]
