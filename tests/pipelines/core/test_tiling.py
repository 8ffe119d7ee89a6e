"""Preprocess patch geometry: a regular grid whose last patch is shifted flush with the edge."""

from __future__ import annotations

import pytest

from pipelines.core.tiling import patch_grid, patch_origins


def test_deepglobe_scene_gives_16_patches() -> None:
    assert patch_origins(2448, 612) == [0, 612, 1224, 1836]
    grid = patch_grid(2448, 2448, 612)
    assert len(grid) == 16
    assert grid[:5] == [(0, 0), (0, 612), (0, 1224), (0, 1836), (612, 0)]


def test_side_not_a_multiple_gets_one_more_patch_flush_with_the_edge() -> None:
    assert patch_origins(2500, 612) == [0, 612, 1224, 1836, 1888]
    assert len(patch_grid(2500, 2448, 612)) == 5 * 4
    # Every pixel is covered and no patch leaves the scene.
    for length in (612, 613, 1000, 2500):
        origins = patch_origins(length, 612)
        assert origins[-1] + 612 == length
        covered = set().union(*(range(o, o + 612) for o in origins))
        assert covered == set(range(length))


def test_side_smaller_than_a_patch_is_an_error() -> None:
    with pytest.raises(ValueError, match="smaller than the patch size"):
        patch_origins(611, 612)
    with pytest.raises(ValueError, match="smaller"):
        patch_grid(2448, 100, 612)
    with pytest.raises(ValueError, match="positive"):
        patch_origins(10, 0)


def test_model_pixels_per_scene_pixel_counts_overlap_and_padding():
    from pipelines.core.tiling import model_pixels_per_scene_pixel

    assert model_pixels_per_scene_pixel(2448, 2448, 612, 64) == pytest.approx(1.5625)
    assert model_pixels_per_scene_pixel(512, 512, 512, 0) == 1.0


def test_planned_tiles_cover_the_scene_with_the_fewest_model_pixels():
    from pipelines.core.tiling import model_pixels_per_scene_pixel, plan_tile, tile_origins

    # 2448² at overlap 64, sides a multiple of the U-Net's stride 16, at most 768: 4 x 4 of 672
    assert plan_tile(2448, 2448, 768, 64, 16) == 672
    assert model_pixels_per_scene_pixel(2448, 2448, 672, 64) == pytest.approx(1.2057, abs=1e-4)
    # 16384²: 25 x 25 of 720 (the fixed 612 ran 1.26 there, 1.56 at 2448²)
    assert plan_tile(16384, 16384, 768, 64, 16) == 720
    assert model_pixels_per_scene_pixel(16384, 16384, 720, 64) == pytest.approx(1.2069, abs=1e-4)
    # an exact fit needs no padding at all; a scene smaller than a tile gets one small tile
    assert plan_tile(512, 512, 768, 64, 16) == 512
    assert plan_tile(100, 60, 768, 64, 16) == 128  # at least 2 x overlap, on the stride
    for height, width, budget, overlap, multiple in [
        (2448, 1000, 768, 64, 16),
        (5000, 3001, 612, 64, 32),
        (301, 257, 128, 32, 1),
    ]:
        side = plan_tile(height, width, budget, overlap, multiple)
        assert side <= budget and side % multiple == 0 and overlap <= side // 2

        def cost(t: int, h: int = height, w: int = width, o: int = overlap) -> int:
            return len(tile_origins(h, t, o)) * len(tile_origins(w, t, o)) * t * t

        # no other allowed side does less model work
        allowed = range(2 * overlap, budget + 1)
        assert cost(side) == min(cost(t) for t in allowed if t % multiple == 0)
