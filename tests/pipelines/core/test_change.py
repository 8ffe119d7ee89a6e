"""From→to codes: every transition one code, nodata kept, names and colours per code."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.core.change import (
    CHANGE_NODATA,
    NUM_CODES,
    UNCHANGED_COLOR,
    change_codes,
    change_color_table,
    classes_of,
    matrix_of,
    transition_name,
)
from pipelines.core.palette import CLASS_COLORS


def test_codes_round_trip_and_nodata_stays_nodata() -> None:
    before = np.array([[3, 3], [0, 6]], np.uint8)
    after = np.array([[3, 0], [1, 6]], np.uint8)
    valid = np.array([[True, True], [True, False]])
    codes = change_codes(before, after, valid)
    assert codes.tolist() == [[24, 21], [1, CHANGE_NODATA]]
    assert [classes_of(int(c)) for c in codes.ravel()[:3]] == [(3, 3), (3, 0), (0, 1)]
    with pytest.raises(ValueError, match="class ids"):
        change_codes(before + 7, after, valid)


def test_names_and_colours_say_what_became_what() -> None:
    assert transition_name(3, 0) == "forest → urban"
    table = change_color_table()
    assert len(table) == NUM_CODES + 1 and table[CHANGE_NODATA][3] == 0
    assert table[3 * 7 + 0] == (*map(int, CLASS_COLORS[0]), 255)  # became urban: urban's colour
    assert table[3 * 7 + 3] == UNCHANGED_COLOR


def test_matrix_rows_are_before_and_columns_after() -> None:
    counts = np.zeros(NUM_CODES, np.int64)
    counts[3 * 7 + 0] = 5
    matrix = matrix_of(counts)
    assert matrix[3, 0] == 5 and matrix.sum() == 5
