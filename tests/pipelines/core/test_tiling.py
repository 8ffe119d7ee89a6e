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
