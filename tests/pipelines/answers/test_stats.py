"""Class areas of class maps against hand computation, by windows, with nodata left out; the
``landcover stats`` run over a folder (tables, per-scene JSON, a bad map dead-lettered)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from PIL import Image

from pipelines.answers.stats import DEEPGLOBE_GSD_SOURCE, run_stats, scene_stats
from pipelines.answers.stats_cli import main as stats_main
from pipelines.answers.tables import read_parquet
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES, encode_mask
from pipelines.io.raster_write import CLASS_NODATA

US_SURVEY_FOOT_M = 1200 / 3937


def layout() -> np.ndarray:
    """30 x 40 ids: forest top half, water bottom-left quarter, urban the rest, 40 nodata."""
    ids = np.zeros((30, 40), np.uint8)
    ids[:15] = 3
    ids[15:, :20] = 4
    ids[0, :] = CLASS_NODATA
    return ids


def by_name(stats) -> dict[str, tuple[int, float | None]]:  # type: ignore[no-untyped-def]
    return {c.name: (c.pixels, c.area_m2) for c in stats.classes}


def test_utm_areas_are_pixels_times_100_square_metres(tmp_path: Path, write_map) -> None:
    path = write_map(tmp_path / "a_mask.tif", layout(), transform=Affine(10, 0, 5e5, 0, -10, 4e6))
    stats = scene_stats(str(path), strip_rows=7)  # windows that do not divide the height
    areas = by_name(stats)
    assert areas["forest"] == (14 * 40, 14 * 40 * 100.0)
    assert areas["water"] == (15 * 20, 300 * 100.0)
    assert areas["urban"] == (15 * 20, 300 * 100.0)
    assert areas["rangeland"] == (0, 0.0)
    assert stats.nodata_pixels == 40 and stats.valid_pixels == 30 * 40 - 40
    record = stats.to_dict()
    forest = next(c for c in record["classes"] if c["name"] == "forest")
    assert forest["area_ha"] == pytest.approx(5.6) and forest["share"] == pytest.approx(560 / 1160)
    assert record["area"]["method"] == "projected"
    assert record["valid_area_ha"] == pytest.approx(11.6)


def test_feet_based_crs_converts_to_square_metres(tmp_path: Path, write_map) -> None:
    path = write_map(
        tmp_path / "f_mask.tif",
        layout(),
        crs="EPSG:2229",
        transform=Affine(3.0, 0, 6.4e6, 0, -3.0, 1.8e6),
    )
    areas = by_name(scene_stats(str(path)))
    pixels, area = areas["water"]
    assert pixels == 300
    assert area == pytest.approx(300 * 9 * US_SURVEY_FOOT_M**2, rel=1e-12)  # 250.84 m²


def test_geographic_scenes_at_two_latitudes(tmp_path: Path, write_map) -> None:
    """The same map in EPSG:4326 at the equator and at 60°N: each row its own area."""
    step = 0.0001
    results = {}
    for top in (0.0015, 60.0015):
        path = write_map(
            tmp_path / f"g{int(top)}_mask.tif",
            layout(),
            crs="EPSG:4326",
            transform=Affine(step, 0, 10.0, 0, -step, top),
        )
        results[top] = scene_stats(str(path), strip_rows=4)
    import pyproj

    geod = pyproj.Geod(ellps="WGS84")
    for top, stats in results.items():
        # Hand computation: forest is rows 1..14, all 40 columns; each row its own area.
        expected = 0.0
        for row in range(1, 15):
            lat1, lat2 = top - row * step, top - (row + 1) * step
            lons = [10.0, 10.0 + 40 * step, 10.0 + 40 * step, 10.0]
            area, _ = geod.polygon_area_perimeter(lons, [lat1, lat1, lat2, lat2])
            expected += abs(area)
        pixels, area = by_name(stats)["forest"]
        assert pixels == 560
        assert area == pytest.approx(expected, rel=1e-9)
        assert stats.area.method == "geographic"
    ratio = by_name(results[60.0015])["forest"][1] / by_name(results[0.0015])["forest"][1]  # type: ignore[operator]
    assert ratio == pytest.approx(0.505, rel=2e-3)


def test_a_deepglobe_png_mask_gets_deepglobes_gsd_and_says_so(tmp_path: Path) -> None:
    ids = np.full((20, 10), 1, np.uint8)
    ids[:5] = 5
    path = tmp_path / "7_mask.png"
    Image.fromarray(encode_mask(ids)).save(path)
    stats = scene_stats(str(path))
    assert stats.scene_id == "7" and stats.area.method == "gsd"
    assert stats.area.source == f"no CRS: GSD 0.5 m from {DEEPGLOBE_GSD_SOURCE}"
    assert by_name(stats)["barren"] == (50, 50 * 0.25)
    assert by_name(stats)["agriculture"] == (150, 150 * 0.25)
    declared = scene_stats(str(path), gsd_m=2.0)
    assert by_name(declared)["barren"] == (50, 50 * 4.0)
    assert declared.area.source == "no CRS: GSD 2 m from --gsd"


def test_a_geotiff_without_crs_or_gsd_gives_pixels_only(tmp_path: Path, write_map) -> None:
    path = write_map(tmp_path / "p_mask.tif", layout(), crs=None)
    stats = scene_stats(str(path))
    assert stats.area.method == "pixels"
    assert by_name(stats)["forest"] == (560, None)
    assert stats.to_dict()["valid_area_m2"] is None


def test_stats_over_a_folder_write_tables_json_and_dead_letter_a_bad_map(
    tmp_path: Path, write_map
) -> None:
    pred = tmp_path / "pred with space"
    write_map(pred / "a_mask.tif", layout(), transform=Affine(10, 0, 5e5, 0, -10, 4e6))
    bad = layout()
    bad[5, 5] = 9  # not a class id, not nodata
    write_map(pred / "b_mask.tif", bad, transform=Affine(10, 0, 5e5, 0, -10, 4e6))
    (pred / "c_mask.tif").write_bytes(b"not a tiff")
    (pred / "a.done.json").write_text("{garbled")  # no record: model version unknown
    assert stats_main(["--pred", str(pred)]) == 0
    out = pred / "stats"
    table = read_parquet(str(out / "stats.parquet")).to_pylist()
    assert len(table) == NUM_CLASSES  # one scene, one row per class
    assert [r["class_name"] for r in table] == list(CLASS_NAMES)
    forest = next(r for r in table if r["class_name"] == "forest")
    assert forest["area_ha"] == pytest.approx(5.6) and forest["model_version"] is None
    csv = (out / "stats.csv").read_text().splitlines()
    assert csv[0].startswith('"scene_id","class_id","class_name"') and len(csv) == 1 + NUM_CLASSES
    assert json.loads((out / "a_stats.json").read_text())["valid_pixels"] == 1160
    lines = [line for f in (out / "errors").glob("*.jsonl") for line in f.read_text().splitlines()]
    errors = [json.loads(line) for line in lines]
    reasons = {Path(e["uri"]).name: e["reason"] for e in errors}
    assert "value 9 in window (row 0..30, col 0..40) is not a class id" in reasons["b_mask.tif"]
    assert "cannot open as a raster" in reasons["c_mask.tif"]
    summary = run_stats(str(pred), str(tmp_path / "elsewhere"))
    assert (summary["scenes"], summary["written"], summary["failed"]) == (3, 1, 2)


def test_stats_of_maps_on_gcs(tmp_path: Path, write_map, gcs_root: str) -> None:
    from pipelines.io import storage

    local = write_map(tmp_path / "a_mask.tif", layout(), transform=Affine(10, 0, 5e5, 0, -10, 4e6))
    storage.upload_file(str(local), f"{gcs_root}/pred/a_mask.tif")
    summary = run_stats(f"{gcs_root}/pred")
    assert summary["written"] == 1
    table = read_parquet(f"{gcs_root}/pred/stats/stats.parquet").to_pylist()
    assert next(r for r in table if r["class_name"] == "water")["area_m2"] == 30000.0


def test_a_missing_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert stats_main(["--pred", str(tmp_path / "nope")]) == 2
    assert "input folder does not exist" in capsys.readouterr().err
