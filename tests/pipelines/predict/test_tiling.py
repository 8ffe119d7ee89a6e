"""Inference tiling: grid, padding, blend weights, and a seamless stitch (pure NumPy, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core import tiling

SIZES = [
    (301, 257, 128, 32),  # odd sizes, the case
    (2448, 2448, 612, 64),  # a DeepGlobe scene at the defaults
    (50, 7, 128, 32),  # smaller than one tile
    (130, 128, 128, 32),  # one side a hair over a tile, the other exact
    (1, 1, 16, 8),
    (200, 201, 64, 0),  # no overlap: tiles abut
    (200, 201, 64, 1),
    (97, 300, 64, 3),
    (97, 300, 64, 32),  # the largest overlap allowed (tile // 2)
]


def test_tile_origins_step_by_stride_until_the_side_is_covered():
    assert tiling.tile_origins(2448, 612, 64) == [0, 548, 1096, 1644, 2192]
    assert tiling.tile_origins(301, 128, 32) == [0, 96, 192]
    assert tiling.tile_origins(128, 128, 32) == [0]
    assert tiling.tile_origins(50, 128, 32) == [0]
    assert tiling.tile_origins(224, 128, 32) == [0, 96]  # exactly covered: no padding needed
    assert tiling.padded_extent(224, 128, 32) == 224
    assert tiling.tile_origins(225, 128, 32) == [0, 96, 192]
    assert tiling.padded_extent(301, 128, 32) == 320


@pytest.mark.parametrize(
    ("length", "tile", "overlap"), [(10, 0, 0), (10, 8, 5), (10, 8, -1), (0, 8, 2)]
)
def test_tile_arguments_are_validated(length: int, tile: int, overlap: int):
    with pytest.raises(ValueError):
        tiling.tile_origins(length, tile, overlap)


def test_tile_grid_is_row_major_and_indexes_tiles():
    grid = tiling.tile_grid(301, 257, 128, 32)
    assert grid == [(y, x) for y in (0, 96, 192) for x in (0, 96, 192)]


def test_pad_to_grid_reflects_at_bottom_and_right():
    image = np.arange(5 * 3 * 2, dtype=np.uint8).reshape(5, 3, 2)
    padded = tiling.pad_to_grid(image, 8, 2)
    assert padded.shape == (8, 8, 2)
    np.testing.assert_array_equal(padded[:5, :3], image)
    np.testing.assert_array_equal(padded[5, :3], image[3])  # reflect, not edge: 4 3 [2 ...]
    np.testing.assert_array_equal(padded[:5, 3], image[:, 1])
    # a 1-px side cannot reflect; NumPy repeats it
    assert tiling.pad_to_grid(np.zeros((1, 1, 3), np.uint8), 16, 8).shape == (16, 16, 3)


def test_cut_tiles_are_slices_of_the_padded_scene():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (301, 257, 3), dtype=np.uint8)
    tiles = tiling.cut_tiles(image, 128, 32)
    padded = tiling.pad_to_grid(image, 128, 32)
    grid = tiling.tile_grid(301, 257, 128, 32)
    assert len(tiles) == len(grid) == 9
    for (y, x), tile in zip(grid, tiles, strict=True):
        assert tile.shape == (128, 128, 3)
        np.testing.assert_array_equal(tile, padded[y : y + 128, x : x + 128])
    np.testing.assert_array_equal(tiles[0], image[:128, :128])


@pytest.mark.parametrize("overlap", [1, 2, 3, 8, 32, 64])
def test_blend_ramp_is_complementary_and_zero_only_in_the_margin(overlap: int):
    ramp = tiling.blend_ramp(overlap)
    margin = tiling.blend_margin(overlap)
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)
    assert (ramp[:margin] == 0).all()
    assert (ramp[margin:] > 0).all()
    assert (np.diff(ramp) >= 0).all()


@pytest.mark.parametrize(("height", "width", "tile", "overlap"), SIZES)
def test_blend_weights_sum_to_one_everywhere(height: int, width: int, tile: int, overlap: int):
    blender = tiling.TileBlender(height, width, tile, overlap, channels=1)
    for index in range(len(blender.grid)):
        blender.add(index, np.ones((tile, tile, 1), np.float32))
    assert blender.complete
    assert blender.weight.min() > 0.999
    np.testing.assert_allclose(blender.weight, 1.0, atol=1e-6)
    np.testing.assert_allclose(blender.probabilities(), 1.0, atol=1e-6)


def test_untapered_sides_are_only_scene_borders():
    # the first tile of a 3x3 grid: full weight on its top and left edges, zero on the inner ones
    weights = tiling.tile_weights(301, 257, 128, 32, 0, 0)
    assert (weights[0, :96] == 1).all() and (weights[:96, 0] == 1).all()
    assert (weights[-1] == 0).all() and (weights[:, -1] == 0).all()
    # the last tile is untapered on its far sides, which lie beyond the scene
    last = tiling.tile_weights(301, 257, 128, 32, 192, 192)
    assert (last[-1, 32:] == 1).all() and (last[32:, -1] == 1).all()


def _box_filter(image: np.ndarray, radius: int) -> np.ndarray:
    """A translation-equivariant "model": mean over (2r+1)² with zero ('same') padding."""
    padded = np.pad(image, [(radius, radius), (radius, radius), (0, 0)])
    out = np.zeros_like(image, dtype=np.float64)
    size = 2 * radius + 1
    for dy in range(size):
        for dx in range(size):
            out += padded[dy : dy + image.shape[0], dx : dx + image.shape[1]]
    return (out / size**2).astype(np.float32)


@pytest.mark.parametrize("radius", [1, 2, 8])
def test_stitch_of_a_local_model_equals_the_model_on_the_whole_padded_scene(radius: int):
    """Seamless: tile borders (where 'same' padding sees zeros) never reach the blend."""
    rng = np.random.default_rng(1)
    image = rng.random((301, 257, 3), dtype=np.float32)
    tile, overlap = 128, 32  # margin 8: any receptive radius up to 8 is exact
    blender = tiling.TileBlender(301, 257, tile, overlap, channels=3)
    for index, patch in enumerate(tiling.cut_tiles(image, tile, overlap)):
        blender.add(index, _box_filter(np.ascontiguousarray(patch), radius))
    expected = _box_filter(tiling.pad_to_grid(image, tile, overlap), radius)[:301, :257]
    np.testing.assert_allclose(blender.probabilities(), expected, atol=1e-5)
    np.testing.assert_array_equal(blender.class_ids(), expected.argmax(-1))


def test_naive_tiling_shows_seams_that_the_blend_removes():
    """The check above has teeth: abutting tiles (overlap 0) differ from the whole scene."""
    rng = np.random.default_rng(2)
    image = rng.random((301, 257, 3), dtype=np.float32)
    blender = tiling.TileBlender(301, 257, 128, 0, channels=3)
    for index, patch in enumerate(tiling.cut_tiles(image, 128, 0)):
        blender.add(index, _box_filter(np.ascontiguousarray(patch), 1))
    expected = _box_filter(tiling.pad_to_grid(image, 128, 0), 1)[:301, :257]
    error = np.abs(blender.probabilities() - expected).max(axis=-1)
    assert error[127].max() > 0.05  # the seam row
    assert error[:126, :126].max() < 1e-5  # inside a tile it agrees


def test_blender_rejects_wrong_tiles():
    blender = tiling.TileBlender(100, 100, 64, 16, channels=7)
    with pytest.raises(ValueError, match="shape"):
        blender.add(0, np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="outside"):
        blender.add(99, np.zeros((64, 64, 7), np.float32))
    blender.add(0, np.zeros((64, 64, 7), np.float32))
    with pytest.raises(ValueError, match="twice"):
        blender.add(0, np.zeros((64, 64, 7), np.float32))
    assert not blender.complete
