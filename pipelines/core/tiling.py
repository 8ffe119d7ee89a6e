"""Tiling geometry shared by preprocessing (patches) and inference (overlapping tiles).

Preprocessing edge rule: a side that is not a multiple of the patch size gets one more patch,
shifted inward so it ends exactly at the edge and overlaps its neighbour. No pixel is dropped
and none is invented (no padding), so every training pixel is real; a 2448 side gives 4
patches of 612 at 0, 612, 1224, 1836, and a 2500 side gives 5 (the last at 1888). A scene
smaller than one patch cannot be cut and is reported as bad input.
"""

from __future__ import annotations


def patch_origins(length: int, patch: int) -> list[int]:
    """Start offsets along one side: a regular grid, the last one flush with the edge."""
    if patch <= 0:
        raise ValueError(f"patch size must be positive, got {patch}")
    if length < patch:
        raise ValueError(f"side of {length} px is smaller than the patch size {patch}")
    count = -(-length // patch)
    return [min(i * patch, length - patch) for i in range(count)]


def patch_grid(height: int, width: int, patch: int) -> list[tuple[int, int]]:
    """(y, x) origins of every patch, row-major."""
    return [(y, x) for y in patch_origins(height, patch) for x in patch_origins(width, patch)]
