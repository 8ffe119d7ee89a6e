"""From→to change codes between two class maps: the arithmetic, pure.

A pixel that is class ``f`` before and class ``t`` after gets code ``f * NUM_CLASSES + t``
(0..48 for the 7 palette classes), so one uint8 band holds every transition, unchanged pixels
included (code ``f * 8``: the diagonal); nodata in either date is :data:`CHANGE_NODATA`. The
colour of a code is its "to" class's colour when the class changed, and grey when it did not,
so a change map shows where land became what.
"""

from __future__ import annotations

import numpy as np

from pipelines.core.palette import CLASS_COLORS, CLASS_NAMES, NUM_CLASSES

CHANGE_NODATA = 255
NUM_CODES = NUM_CLASSES * NUM_CLASSES
# Unchanged pixels: a light grey, so the changed ones (in their new class's colour) stand out.
UNCHANGED_COLOR = (200, 200, 200, 255)
ARROW = "→"


def change_codes(before: np.ndarray, after: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Codes ``before * 7 + after`` (uint8); :data:`CHANGE_NODATA` where ``valid`` is False."""
    if before.shape != after.shape or before.shape != valid.shape:
        raise ValueError(f"shapes differ: {before.shape}, {after.shape}, {valid.shape}")
    if before.max(initial=0) >= NUM_CLASSES or after.max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"class ids must be in 0..{NUM_CLASSES - 1}")
    codes = before.astype(np.uint8) * np.uint8(NUM_CLASSES) + after.astype(np.uint8)
    return np.where(valid, codes, np.uint8(CHANGE_NODATA)).astype(np.uint8)


def code_of(from_id: int, to_id: int) -> int:
    return from_id * NUM_CLASSES + to_id


def classes_of(code: int) -> tuple[int, int]:
    """``code`` → (from class id, to class id)."""
    if not 0 <= code < NUM_CODES:
        raise ValueError(f"change code {code} is outside 0..{NUM_CODES - 1}")
    return divmod(code, NUM_CLASSES)


def transition_name(from_id: int, to_id: int) -> str:
    """``forest → urban`` (the same words a summary table and the COG's categories use)."""
    return f"{CLASS_NAMES[from_id]} {ARROW} {CLASS_NAMES[to_id]}"


def transition_color(from_id: int, to_id: int) -> tuple[int, int, int, int]:
    """RGBA of a code: the new class's colour when changed, :data:`UNCHANGED_COLOR` when not."""
    if from_id == to_id:
        return UNCHANGED_COLOR
    r, g, b = (int(v) for v in CLASS_COLORS[to_id])
    return (r, g, b, 255)


def change_color_table() -> dict[int, tuple[int, int, int, int]]:
    """Code → RGBA for every code, nodata transparent."""
    table = {
        code_of(f, t): transition_color(f, t)
        for f in range(NUM_CLASSES)
        for t in range(NUM_CLASSES)
    }
    table[CHANGE_NODATA] = (0, 0, 0, 0)
    return table


def matrix_of(pixels_per_code: np.ndarray) -> np.ndarray:
    """Counts (or areas) per code ``(49,)`` → the from→to matrix ``(7, 7)``: rows before."""
    if pixels_per_code.shape != (NUM_CODES,):
        raise ValueError(f"expected {NUM_CODES} values, got shape {pixels_per_code.shape}")
    return pixels_per_code.reshape(NUM_CLASSES, NUM_CLASSES)
