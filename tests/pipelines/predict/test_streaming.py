"""Streaming stitch and windowed prediction: equal to the whole-scene blend; blocks run their own
grids, equal to the whole for a model within the blend margin and never running a tile twice."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core import tiling
from pipelines.core.geo import PixelWindow, block_grid
from pipelines.core.stitching import StreamingStitcher, reflect_coords
from pipelines.predict.streaming import ArraySource, predict_region

C = 3


def _local_model(tiles: np.ndarray) -> np.ndarray:
    """Translation-equivariant within the blend margin: a 3x3 box filter, 'same' zero padding."""
    x = tiles.astype(np.float32) / 255.0
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    box = sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
    return np.asarray(box, np.float32)


def _image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_reflect_coords_over_the_grid_extent_is_pad_to_grid():
    image = _image(37, 5)
    ry = reflect_coords(37, 0, tiling.padded_extent(37, 16, 4))
    rx = reflect_coords(5, 0, tiling.padded_extent(5, 16, 4))
    np.testing.assert_array_equal(image[ry][:, rx], tiling.pad_to_grid(image, 16, 4))
    # a block's grid starts inside the scene and may reach past the whole grid's extent
    np.testing.assert_array_equal(reflect_coords(5, 3, 9), [3, 4, 3, 2, 1, 0])


@pytest.mark.parametrize("height,width,tile,overlap", [(101, 77, 32, 8), (50, 130, 64, 16)])
def test_streaming_stitch_equals_the_whole_scene_blender_bit_for_bit(height, width, tile, overlap):
    rng = np.random.default_rng(1)
    grid = tiling.tile_grid(height, width, tile, overlap)
    tiles = rng.random((len(grid), tile, tile, C), dtype=np.float32)
    whole = tiling.TileBlender(height, width, tile, overlap, C)
    for index, probabilities in enumerate(tiles):
        whole.add(index, probabilities)
    for region in [None, PixelWindow(0, 0, height, width)]:  # a region that is the scene
        stitcher = StreamingStitcher(height, width, tile, overlap, C, region)
        canvas = np.full((height, width, C), np.nan, np.float32)
        for row in stitcher.rows:
            for index, _ in row.tiles:
                stitcher.add(tiles[index])
            band = stitcher.finish_row()
            if band is not None:
                w = band.window
                canvas[w.row_off : w.row_stop, w.col_off : w.col_stop] = band.canvas
                assert band.canvas.shape[0] <= tile  # only a band is ever held
        assert stitcher.done
        r = region or PixelWindow(0, 0, height, width)
        rows, cols = slice(r.row_off, r.row_stop), slice(r.col_off, r.col_stop)
        np.testing.assert_array_equal(canvas[rows, cols], whole.canvas[rows, cols])


def test_a_block_stitches_its_own_grid_over_the_block_widened_by_half_the_overlap():
    height, width, tile, overlap = 100, 90, 32, 8
    blocks = block_grid(height, width, 40)
    frames = [tiling.grid_frame(height, width, block, overlap) for block in blocks]
    # inner sides widened by overlap // 2, scene borders kept
    assert frames[0] == PixelWindow(0, 0, 44, 44)
    assert frames[4] == PixelWindow(36, 36, 48, 48)  # the middle block, four inner sides
    assert frames[-1] == PixelWindow(76, 76, 24, 14)
    assert tiling.grid_frame(height, width, None, overlap) == PixelWindow(0, 0, height, width)
    for block, frame in zip(blocks, frames, strict=True):
        stitcher = StreamingStitcher(height, width, tile, overlap, C, block)
        assert stitcher.frame == frame
        origins = [(row.y, x) for row in stitcher.rows for _, x in row.tiles]
        assert origins[0] == (frame.row_off, frame.col_off)  # the grid starts at the frame
        assert len(origins) == len(tiling.tile_grid(frame.height, frame.width, tile, overlap))
        # every pixel of the block is covered with total weight 1: nothing of the whole is lost
        weight = np.zeros(block.shape, np.float32)
        for row in stitcher.rows:
            for _ in row.tiles:
                stitcher.add(np.ones((tile, tile, C), np.float32))
            band = stitcher.finish_row()
            if band is not None:
                r0 = band.window.row_off - block.row_off
                weight[r0 : r0 + band.window.height] = band.weight
        np.testing.assert_allclose(weight, 1.0, atol=1e-6)


@pytest.mark.parametrize("height,width", [(97, 131), (20, 13)])
def test_windowed_prediction_of_blocks_equals_whole_scene_prediction(height, width):
    image = _image(height, width, seed=2)
    tile, overlap = 32, 8
    reference = _local_model(tiling.pad_to_grid(image, tile, overlap)[None])[0][:height, :width]

    def collect(region):
        out = np.full((height, width), 255, np.uint8)
        probs = np.zeros((height, width, C), np.float32)

        def sink(window, ids, p, valid):
            rows = slice(window.row_off, window.row_stop)
            cols = slice(window.col_off, window.col_stop)
            out[rows, cols], probs[rows, cols] = ids, p
            assert valid.all()

        predict_region(
            ArraySource(image),
            _local_model,
            sink,
            tile=tile,
            overlap=overlap,
            channels=C,
            batch_size=3,
            region=region,
            with_probabilities=True,
        )
        return out, probs

    whole_ids, whole_probs = collect(None)
    np.testing.assert_allclose(whole_probs, reference, atol=1e-6)
    blocks_ids = np.full((height, width), 254, np.uint8)
    blocks_probs = np.full((height, width, C), np.nan, np.float32)
    for block in block_grid(height, width, 24):
        ids, probs = collect(block)
        rows, cols = slice(block.row_off, block.row_stop), slice(block.col_off, block.col_stop)
        blocks_ids[rows, cols], blocks_probs[rows, cols] = ids[rows, cols], probs[rows, cols]
    np.testing.assert_array_equal(blocks_ids, whole_ids)
    # each block blends its own tiles: the same values, summed in another order
    np.testing.assert_allclose(blocks_probs, whole_probs, atol=1e-6)


def test_all_nodata_tiles_are_not_run_and_their_pixels_are_nodata():
    image = _image(64, 96, seed=3)
    valid = np.ones((64, 96), bool)
    valid[:, :40] = False  # the first tile column (x 0..32) lies in the nodata border

    class Source(ArraySource):
        def read(self, window):
            pixels, _ = super().read(window)
            return pixels, valid[window.row_off : window.row_stop, window.col_off : window.col_stop]

    seen: list[int] = []

    def model(tiles):
        seen.append(len(tiles))
        return _local_model(tiles)

    got_valid = np.zeros((64, 96), bool)

    def sink(window, ids, p, v):
        got_valid[window.row_off : window.row_stop, window.col_off : window.col_stop] = v

    stats = predict_region(Source(image), model, sink, tile=32, overlap=0, channels=C, batch_size=8)
    assert (stats.tiles_run, stats.tiles_skipped_nodata) == (4, 2)
    assert sum(seen) == 4
    assert stats.nodata_pixels == 64 * 40
    np.testing.assert_array_equal(got_valid, valid)
