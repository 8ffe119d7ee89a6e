"""Prediction through the model's grid: equal to resampling the whole scene, predicting it and
resampling the whole map back; blocks equal the whole; nodata stays the input's own."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.geo import PixelWindow, block_grid
from pipelines.core.gsd import Gsd
from pipelines.core.resample import Regrid, apply_taps, make_taps
from pipelines.predict.regrid import ModelGrid, predict_on_model_grid
from pipelines.predict.streaming import ArraySource, PixelSource, predict_region

C, TILE, OVERLAP = 4, 32, 8


def _model(tiles: np.ndarray) -> np.ndarray:
    """A 3x3 box filter then a softmax over C channels: local, so its stitch is seamless."""
    x = tiles.astype(np.float32) / 255.0
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    box = sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
    logits = np.concatenate([box * 4, box[..., :1] * -3 + 1], axis=-1)
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True), np.float32)


class _Sink:
    def __init__(self, height: int, width: int) -> None:
        self.ids = np.full((height, width), 255, np.uint8)
        self.probs = np.full((height, width, C), np.nan, np.float32)
        self.valid = np.zeros((height, width), bool)
        self.bands = 0

    def __call__(self, window, class_ids, probabilities, valid) -> None:  # type: ignore[no-untyped-def]
        cut = (slice(window.row_off, window.row_stop), slice(window.col_off, window.col_stop))
        self.ids[cut], self.valid[cut] = class_ids, valid
        if probabilities is not None:
            self.probs[cut] = probabilities
        self.bands += 1


class _Masked:
    """An image with a nodata border (validity False), as a raster source gives it."""

    def __init__(self, image: np.ndarray, valid: np.ndarray) -> None:
        self.image, self.valid = image, valid
        self.height, self.width = image.shape[:2]

    def read(self, window: PixelWindow) -> tuple[np.ndarray, np.ndarray]:
        cut = (slice(window.row_off, window.row_stop), slice(window.col_off, window.col_stop))
        return self.image[cut], self.valid[cut]


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 4 + 1, width // 4 + 1, 3)).astype(np.uint8)
    return np.kron(base, np.ones((4, 4, 1), np.uint8))[:height, :width]


def _reference(source: PixelSource, grid: ModelGrid) -> tuple[np.ndarray, np.ndarray]:
    """Resample the whole scene, predict it on its own, resample the whole map back."""
    everything = PixelWindow(0, 0, source.height, source.width)
    pixels, valid = source.read(everything)
    regrid = Regrid.between(grid.scene, grid.model)
    resampled, _ = regrid.pixels(PixelWindow(0, 0, *grid.model), pixels, valid, everything)
    sink = _Sink(*grid.model)
    predict_region(
        ArraySource(resampled),
        _model,
        sink,
        tile=TILE,
        overlap=OVERLAP,
        channels=C,
        batch_size=3,
        with_probabilities=True,
    )
    rows = make_taps(grid.model[0], grid.scene[0], "nearest").index[:, 0]
    cols = make_taps(grid.model[1], grid.scene[1], "nearest").index[:, 0]
    ids = sink.ids[rows][:, cols]
    prow = make_taps(grid.model[0], grid.scene[0], "bilinear")
    pcol = make_taps(grid.model[1], grid.scene[1], "bilinear")
    probs = apply_taps(apply_taps(sink.probs, prow, 0), pcol, 1)
    return ids, probs


@pytest.mark.parametrize(("scene_m", "shape"), [(1.0, (70, 90)), (0.25, (45, 37)), (0.7, (61, 50))])
def test_the_output_equals_predicting_the_resampled_scene_and_resampling_back(
    scene_m: float, shape: tuple[int, int]
) -> None:
    source = ArraySource(_image(*shape))
    grid = ModelGrid.of(*shape, Gsd.uniform(scene_m, "test"), 0.5)
    expected_ids, expected_probs = _reference(source, grid)
    sink = _Sink(*shape)
    stats = predict_on_model_grid(
        source,
        _model,
        sink,
        grid,
        tile=TILE,
        overlap=OVERLAP,
        channels=C,
        batch_size=3,
        with_probabilities=True,
    )
    assert np.array_equal(sink.ids, expected_ids)
    assert np.array_equal(sink.probs, expected_probs)
    assert sink.valid.all() and stats.nodata_pixels == 0
    if grid.model[0] > TILE:
        assert sink.bands > 1  # streamed in bands, never one scene-sized write


def test_twice_the_model_gsd_halves_the_grid_and_the_record_says_so() -> None:
    grid = ModelGrid.of(70, 90, Gsd.uniform(1.0, "transform (EPSG:32633, metre)"), 0.5)
    assert grid.model == (140, 180)
    facts = grid.describe()
    assert facts["resampled"] and facts["model_grid"] == [140, 180]
    assert (facts["image"], facts["classes"], facts["probabilities"]) == (
        "bilinear",
        "nearest",
        "bilinear",
    )
    assert facts["note"] == (
        "predicted at the model's 0.5 m on a 140x180 grid, written on the input's own 70x90 grid"
    )


@pytest.mark.parametrize("probabilities", [False, True])
def test_blocks_of_the_scene_equal_the_whole_and_nodata_is_the_inputs_own(
    probabilities: bool,
) -> None:
    height, width = 77, 65
    image = _image(height, width, seed=2)
    valid = np.ones((height, width), bool)
    valid[:, :9] = False  # a nodata border
    valid[40:45, 30:33] = False
    source = _Masked(image, valid)
    grid = ModelGrid.of(height, width, Gsd(1.2, 0.9, "test"), 0.5)
    kwargs = {"tile": TILE, "overlap": OVERLAP, "channels": C, "batch_size": 2}
    whole = _Sink(height, width)
    stats = predict_on_model_grid(
        source, _model, whole, grid, with_probabilities=probabilities, **kwargs
    )
    assert np.array_equal(whole.valid, valid)
    assert stats.nodata_pixels == int((~valid).sum())
    parts = _Sink(height, width)
    for block in block_grid(height, width, 24):
        predict_on_model_grid(
            source, _model, parts, grid, region=block, with_probabilities=probabilities, **kwargs
        )
    assert np.array_equal(parts.ids, whole.ids)
    assert np.array_equal(parts.valid, whole.valid)
    if probabilities:  # each block blends its own tiles: the same values, another order
        np.testing.assert_allclose(parts.probs, whole.probs, atol=1e-6)
