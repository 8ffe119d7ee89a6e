"""Change between two small rasters with a known from→to matrix: same grid, a coarser and
shifted grid warped onto before's, nodata in either date; pairing by id and by footprint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipelines.answers.change import (
    ScenePair,
    compute_change,
    pair_maps,
    summary_lines,
    summary_rows,
)
from pipelines.core.change import CHANGE_NODATA
from pipelines.core.errors import BadInputError
from pipelines.core.palette import NUM_CLASSES
from pipelines.io.raster_cog import inspect_cog
from pipelines.io.raster_describe import read_description
from pipelines.io.raster_write import CLASS_NODATA

GRID = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)  # 10 m pixels, 100 m² each


def expected_matrix(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    valid = (before != CLASS_NODATA) & (after != CLASS_NODATA)
    matrix = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    np.add.at(matrix, (before[valid], after[valid]), 1)
    return matrix


def pair(tmp: Path, before: str, after: str) -> ScenePair:
    return ScenePair("s", "s", str(tmp / before), "s", str(tmp / after), "id")


def test_a_pair_on_one_grid_gives_the_known_matrix(tmp_path: Path, write_map) -> None:
    before = np.full((40, 30), 3, np.uint8)  # all forest
    before[:, 20:] = 1  # agriculture on the right
    after = before.copy()
    after[:10, :10] = 0  # 100 px of forest became urban
    after[30:, 25:] = 4  # 50 px of agriculture became water
    before[39, 0] = CLASS_NODATA  # nodata before ...
    after[0, 29] = CLASS_NODATA  # ... and after: both left out
    write_map(tmp_path / "b" / "s_mask.tif", before, transform=GRID)
    write_map(tmp_path / "a" / "s_mask.tif", after, transform=GRID)
    record = compute_change(
        pair(tmp_path, "b/s_mask.tif", "a/s_mask.tif"), str(tmp_path / "out"), strip_rows=7
    )
    matrix = np.array(record["matrix_pixels"])
    np.testing.assert_array_equal(matrix, expected_matrix(before, after))
    assert matrix[3, 0] == 100 and matrix[1, 4] == 50 and record["nodata_pixels"] == 2
    assert record["regridded"] is False
    ha = np.array(record["matrix_ha"])
    assert ha[3, 0] == pytest.approx(1.0) and ha[1, 4] == pytest.approx(0.5)  # 100 m² a pixel
    assert record["changed_pixels"] == 150 and record["changed_ha"] == pytest.approx(1.5)
    top = record["transitions"][0]
    assert (top["transition"], top["area_ha"]) == ("forest → forest", pytest.approx(6.99))
    assert summary_lines([record]) == [
        "s: forest → urban: 1.00 ha",
        "s: agriculture → water: 0.50 ha",
    ]
    rows = summary_rows(record)
    assert {(r["from_class"], r["to_class"]): r["pixels"] for r in rows}[("forest", "urban")] == 100
    with rasterio.open(tmp_path / "out" / "s_change.tif") as ds:
        codes = ds.read(1)
        assert ds.crs.to_epsg() == 32633 and ds.transform == GRID
    assert codes[0, 0] == 3 * 7 + 0 and codes[20, 25] == 1 * 7 + 1
    assert codes[39, 0] == CHANGE_NODATA and codes[0, 29] == CHANGE_NODATA
    described = read_description(str(tmp_path / "out" / "s_change.tif"))
    assert described.categories[21].name == "forest → urban"
    assert inspect_cog(str(tmp_path / "out" / "s_change.tif")).valid
    saved = json.loads((tmp_path / "out" / "s_change.json").read_text())
    assert saved["matrix_pixels"] == record["matrix_pixels"]


def test_a_coarser_shifted_after_is_warped_onto_befores_grid(tmp_path: Path, write_map) -> None:
    """after has 20 m pixels and starts 100 m east: each covers 2x2 of before's, nearest."""
    rng = np.random.default_rng(4)
    before = rng.integers(0, NUM_CLASSES, (40, 40)).astype(np.uint8)
    coarse = rng.integers(0, NUM_CLASSES, (20, 20)).astype(np.uint8)
    shifted = Affine(20.0, 0.0, 500000.0 + 100.0, 0.0, -20.0, 4000000.0)
    write_map(tmp_path / "b" / "s_mask.tif", before, transform=GRID)
    write_map(tmp_path / "a" / "s_mask.tif", coarse, transform=shifted)
    record = compute_change(pair(tmp_path, "b/s_mask.tif", "a/s_mask.tif"), str(tmp_path / "o"))
    assert record["regridded"] is True
    # By hand: before's column c lies in after's column (c - 10) // 2; columns 0..9 are outside.
    on_before_grid = np.full((40, 40), CLASS_NODATA, np.uint8)
    on_before_grid[:, 10:] = np.kron(coarse, np.ones((2, 2), np.uint8))[:, :30]
    np.testing.assert_array_equal(
        np.array(record["matrix_pixels"]), expected_matrix(before, on_before_grid)
    )
    assert record["nodata_pixels"] == 40 * 10
    with rasterio.open(tmp_path / "o" / "s_change.tif") as ds:
        assert ds.shape == (40, 40) and ds.transform == GRID  # the change map is on before's grid
        assert (ds.read(1)[:, :10] == CHANGE_NODATA).all()


def test_a_grid_in_another_crs_is_warped_too(tmp_path: Path, write_map) -> None:
    """after in EPSG:4326 covering before: every before pixel gets an after value."""
    before = np.full((20, 20), 2, np.uint8)
    after = np.full((50, 50), 5, np.uint8)
    # before spans 15.0000..15.0022°E, 36.1429..36.1447°N;
    # after covers 14.998..15.003°E, 36.141..36.146°N.
    write_map(tmp_path / "b" / "s_mask.tif", before, transform=GRID)
    write_map(
        tmp_path / "a" / "s_mask.tif",
        after,
        crs="EPSG:4326",
        transform=Affine(0.0001, 0, 14.998, 0, -0.0001, 36.146),
    )
    record = compute_change(pair(tmp_path, "b/s_mask.tif", "a/s_mask.tif"), str(tmp_path / "o"))
    assert record["regridded"] is True and record["nodata_pixels"] == 0
    assert np.array(record["matrix_pixels"])[2, 5] == 400


def test_maps_without_georeference_must_share_a_size(tmp_path: Path, write_map) -> None:
    write_map(tmp_path / "b" / "s_mask.tif", np.zeros((10, 10), np.uint8), crs=None)
    write_map(tmp_path / "a" / "s_mask.tif", np.zeros((10, 12), np.uint8), crs=None)
    with pytest.raises(BadInputError, match="without a georeference"):
        compute_change(pair(tmp_path, "b/s_mask.tif", "a/s_mask.tif"), str(tmp_path / "o"))
    assert not (tmp_path / "o" / "s_change.tif").exists()


def test_pairs_by_id_then_by_largest_footprint_overlap(tmp_path: Path, write_map) -> None:
    ids = np.zeros((10, 10), np.uint8)
    shifted = Affine(10.0, 0.0, 500050.0, 0.0, -10.0, 4000000.0)  # overlaps x by half
    far = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 4000000.0)
    before = [
        ("1", str(write_map(tmp_path / "b" / "1_mask.tif", ids, transform=GRID))),
        ("2", str(write_map(tmp_path / "b" / "2_mask.tif", ids, transform=GRID))),
        ("3", str(write_map(tmp_path / "b" / "3_mask.tif", ids, crs=None))),
    ]
    after = [
        ("1", str(write_map(tmp_path / "a" / "1_mask.tif", ids, transform=far))),
        ("7", str(write_map(tmp_path / "a" / "7_mask.tif", ids, transform=shifted))),
        ("8", str(write_map(tmp_path / "a" / "8_mask.tif", ids, transform=GRID))),
        ("9", str(write_map(tmp_path / "a" / "9_mask.tif", ids, transform=far))),
    ]
    pairs, notes = pair_maps(before, after)
    assert [(p.pair_id, p.after_id, p.matched_by) for p in pairs] == [
        ("1", "1", "id"),  # the same id pairs, however far apart
        ("2__8", "8", "footprint"),  # 8 covers 2 whole, 7 only half
    ]
    assert any("3_mask.tif: no map of the other date has scene id '3'" in n for n in notes)
    assert any("9_mask.tif: no map of the other date pairs with it" in n for n in notes)


def test_a_new_scene_pairs_with_the_latest_earlier_overlapping_map(tmp_path: Path) -> None:
    from pipelines.answers.change import pairs_with_previous

    def item(scene_id: str, x: float, day: int, sha: str) -> None:
        square = [[x, 0.0], [x + 1, 0.0], [x + 1, 1.0], [x, 1.0], [x, 0.0]]
        document = {
            "type": "Feature",
            "id": scene_id,
            "geometry": {"type": "Polygon", "coordinates": [square]},
            "properties": {
                "datetime": f"2024-06-{day:02d}T00:00:00Z",
                "landcover:input_sha256": sha,
            },
            "assets": {"mask": {"href": f"./{scene_id}_mask.tif"}},
        }
        (tmp_path / f"{scene_id}_item.json").write_text(json.dumps(document))

    item("old", 0.0, 1, "a")
    item("older_far", 5.0, 2, "b")  # elsewhere
    item("recent", 0.5, 3, "c")  # overlaps, later than old: the previous map
    item("same_input", 0.0, 4, "d")  # the same image again: not a change
    item("new", 0.2, 5, "d")
    item("future", 0.0, 9, "e")  # later than new: not its previous
    pairs = pairs_with_previous(str(tmp_path), ["new", "nowhere"])
    assert [(p.before_id, p.after_id, p.pair_id) for p in pairs] == [
        ("recent", "new", "recent__new")
    ]
    assert pairs[0].before_uri == str(tmp_path / "recent_mask.tif")
    assert pairs_with_previous(str(tmp_path), ["old"]) == []  # nothing earlier
