"""The predict job's Beam steps, one by one: decode and tile, re-key for the shuffle, stitch."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.pvalue import TaggedOutput
from PIL import Image

from models import normalization
from pipelines.core import tiling
from pipelines.core.palette import NUM_CLASSES, encode_mask
from pipelines.io import storage
from pipelines.io.scenes import Scene
from pipelines.predict.outputs import OutputOptions
from pipelines.predict.transforms import SHUFFLE_DTYPE, DecodeAndTile, StitchAndWrite, by_scene

TILE, OVERLAP = 128, 32


def test_training_input_uses_the_same_normalisation_and_inference_the_shared_tiling(
    monkeypatch: pytest.MonkeyPatch, make_image, encode_image
):
    from models import input as training_input

    # training calls the very function the handler calls (however it imports it)
    assert "normalize_image" in inspect.getsource(training_input)
    shared_fn = getattr(training_input, "normalize_image", normalization.normalize_image)
    assert shared_fn is normalization.normalize_image
    cut: list[tuple[int, int]] = []
    shared = tiling.cut_tiles
    monkeypatch.setattr(
        tiling, "cut_tiles", lambda image, t, o: cut.append(image.shape[:2]) or shared(image, t, o)
    )
    image = make_image(150, 100, seed=2)
    scene = Scene("s", "mem://s_sat.png")
    monkeypatch.setattr(storage, "read_bytes", lambda uri: encode_image(image, "PNG"))
    out = list(DecodeAndTile(TILE, OVERLAP).process(scene))
    assert cut == [(150, 100)]
    assert [key for key, _ in out] == [("s", i, 150, 100) for i in range(2)]
    for (_, tile), want in zip(out, shared(image, TILE, OVERLAP), strict=True):
        np.testing.assert_array_equal(tile, want)


def test_bad_scenes_become_one_error_record_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    step = DecodeAndTile(TILE, OVERLAP)
    duplicate = Scene("1", "/in/1_sat.png", "duplicate image of scene 1; /in/1_sat.jpg was used")
    vanished = Scene("gone", str(tmp_path / "gone_sat.png"))
    garbage = Scene("junk", str(tmp_path / "junk_sat.jpg"))
    (tmp_path / "junk_sat.jpg").write_bytes(b"not a jpeg at all")
    records = []
    for scene in (duplicate, vanished, garbage):
        (output,) = step.process(scene)
        assert isinstance(output, TaggedOutput) and output.tag == DecodeAndTile.ERRORS
        records.append(json.loads(output.value))
    assert records[0] == {
        "uri": "/in/1_sat.png",
        "reason": "duplicate image of scene 1; /in/1_sat.jpg was used",
        "stage": "predict",
        "scene_id": "1",
    }
    assert records[1]["reason"] == "file vanished before it could be read"
    assert (records[1]["uri"], records[1]["scene_id"]) == (vanished.uri, "gone")
    assert (records[2]["uri"], records[2]["scene_id"], records[2]["stage"]) == (
        garbage.uri,
        "junk",
        "predict",
    )


def test_by_scene_keeps_only_the_part_inside_the_scene_as_float16():
    height, width = 150, 100  # tiles at y = 0 and 96, x = 0: the second is 54 rows inside
    rng = np.random.default_rng(0)
    probabilities = rng.random((TILE, TILE, NUM_CLASSES), dtype=np.float32)
    tile_input = np.zeros((TILE, TILE, 3), np.uint8)
    keyed = (("s", 1, height, width), PredictionResult(tile_input, probabilities))
    scene_id, (index, h, w, inside) = by_scene(keyed, TILE, OVERLAP)
    assert (scene_id, index, h, w) == ("s", 1, 150, 100)
    assert inside.dtype == SHUFFLE_DTYPE == np.float16
    assert inside.shape == (150 - 96, 100, NUM_CLASSES)
    np.testing.assert_allclose(inside, probabilities[:54, :100], atol=2.5e-4)


def _scene_probabilities(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Class ids in 8-px blocks, and probabilities (padded to the tile grid) peaked on them."""
    rng = np.random.default_rng(1)
    padded_h = tiling.padded_extent(height, TILE, OVERLAP)
    padded_w = tiling.padded_extent(width, TILE, OVERLAP)
    blocks = rng.integers(0, NUM_CLASSES - 1, (padded_h // 8 + 1, padded_w // 8 + 1))
    ids = np.kron(blocks, np.ones((8, 8), int))[:padded_h, :padded_w]
    onehot = np.eye(NUM_CLASSES, dtype=np.float32)[ids]
    probabilities = np.where(onehot > 0, 0.88, 0.02).astype(np.float32)
    return ids[:height, :width].astype(np.uint8), probabilities


def test_stitch_and_write_blends_the_tiles_back_into_the_scene(tmp_path: Path):
    height, width = 150, 100
    class_ids, full = _scene_probabilities(height, width)
    shuffled = []
    for index, (y, x) in enumerate(tiling.tile_grid(height, width, TILE, OVERLAP)):
        tile_prediction = full[y : y + TILE, x : x + TILE]
        result = PredictionResult(np.zeros((TILE, TILE, 3), np.uint8), tile_prediction)
        shuffled.append(by_scene((("s", index, height, width), result), TILE, OVERLAP)[1])
    options = OutputOptions(str(tmp_path), TILE, OVERLAP, write_class_ids=True)
    assert list(StitchAndWrite(options).process(("s", reversed(shuffled)))) == ["s"]
    with Image.open(tmp_path / "s_mask.png") as mask:
        np.testing.assert_array_equal(np.asarray(mask), encode_mask(class_ids))
    with Image.open(tmp_path / "s_classes.png") as written:
        np.testing.assert_array_equal(np.asarray(written), class_ids)
    assert not (tmp_path / "s_probs.npz").exists()


def test_stitch_refuses_a_wrong_class_count_and_missing_tiles(tmp_path: Path):
    options = OutputOptions(str(tmp_path), TILE, OVERLAP)
    three = np.zeros((54, 100, 3), np.float16)
    with pytest.raises(ValueError, match=r"model outputs 3 channels, expected 7 \(urban"):
        list(StitchAndWrite(options).process(("s", [(1, 150, 100, three)])))
    seven = np.zeros((54, 100, NUM_CLASSES), np.float16)
    with pytest.raises(RuntimeError, match="scene s: tiles missing before stitching"):
        list(StitchAndWrite(options).process(("s", [(1, 150, 100, seven)])))
    with pytest.raises(RuntimeError, match="tiles missing"):
        list(StitchAndWrite(options).process(("s", [])))
    assert list(tmp_path.iterdir()) == []
