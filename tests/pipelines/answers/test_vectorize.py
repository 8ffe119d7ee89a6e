"""Polygons from class maps: a region spanning strip (block) boundaries comes out whole and
equal to polygonising the whole map; the polygons' area per class equals the raster's (UTM and
EPSG:4326); --min-area, --simplify; GeoPackage and GeoParquet in the raster's CRS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyogrio
import pyogrio.raw
import pytest
import rasterio.features
import shapely
from affine import Affine
from shapely.geometry import shape

from pipelines.answers import vector_files
from pipelines.answers.stats import scene_stats
from pipelines.answers.vectorize import (
    StripVectorizer,
    run_vectorize,
    to_crs,
    vectorize_class_map,
)
from pipelines.answers.vectorize_cli import VECTOR_FORMATS
from pipelines.answers.vectorize_cli import main as vectorize_main
from pipelines.core.geo import PixelWindow
from pipelines.core.palette import NUM_CLASSES
from pipelines.io.raster_write import CLASS_NODATA

GRID = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)


def snake() -> np.ndarray:
    """30 x 24 agriculture with one forest region snaking down through every strip and back up."""
    ids = np.ones((30, 24), np.uint8)
    ids[1:29, 2] = 3  # down the left
    ids[28, 2:20] = 3  # along the bottom
    ids[3:29, 19] = 3  # back up the right
    ids[3, 10:20] = 3  # and left again near the top
    ids[10:12, 6:9] = 4  # a small water pond, inside no other region
    ids[0, :3] = CLASS_NODATA
    return ids


def read_gpkg(path: Path) -> list[tuple[int, str, int, float, shapely.Geometry]]:
    _, _, geometry, fields = pyogrio.raw.read(str(path))
    polygons = shapely.from_wkb(geometry)
    return list(zip(*(f.tolist() for f in fields[:4]), polygons, strict=True))  # type: ignore[arg-type]


def whole_map_polygons(ids: np.ndarray) -> list[tuple[int, shapely.Geometry]]:
    found = rasterio.features.shapes(ids, mask=ids != CLASS_NODATA, connectivity=4)
    return sorted(((int(v), shape(g)) for g, v in found), key=lambda t: (t[0], t[1].bounds))


def test_a_region_across_strip_boundaries_is_one_polygon(tmp_path: Path, write_map) -> None:
    ids = snake()
    path = write_map(tmp_path / "s_mask.tif", ids, transform=GRID, tiled=True)  # 16 px blocks
    out = tmp_path / "s_polygons.gpkg"
    summary = vectorize_class_map(str(path), str(out), strip_rows=4)  # 8 strips, 7 seams
    features = read_gpkg(out)
    forest = [f for f in features if f[0] == 3]
    assert len(forest) == 1  # one snake, not one piece per strip
    _, name, pixels, area, polygon = forest[0]
    assert (name, pixels) == ("forest", int((ids == 3).sum()))
    assert area == pytest.approx(pixels * 100.0) and polygon.is_valid
    assert polygon.geom_type == "Polygon"
    # In the raster's CRS: the snake's left arm starts at column 2, row 1.
    assert polygon.bounds[0] == pytest.approx(500000.0 + 20.0)
    assert polygon.bounds[3] == pytest.approx(4000000.0 - 10.0)
    assert summary.to_dict()["polygons"] == len(features)
    info = pyogrio.read_info(str(out))
    assert info["crs"] == "EPSG:32633" and info["geometry_type"] == "Polygon"
    # The same polygons, vertex for vertex, as the whole map polygonised at once.
    expected = whole_map_polygons(ids)
    assert len(features) == len(expected)
    for (c, _, _, _, got), (want_c, want) in zip(
        sorted(features, key=lambda f: (f[0], shapely.bounds(f[4]).tolist())),
        expected,
        strict=True,
    ):
        want = to_crs(want, GRID[:6])
        assert c == want_c and got.symmetric_difference(want).area == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("rows", [1, 2, 5, 16])
def test_strips_equal_the_whole_map_on_random_maps(rows: int) -> None:
    rng = np.random.default_rng(rows)
    for _ in range(10):
        h, w = (int(v) for v in rng.integers(4, 40, 2))
        ids = np.kron(rng.integers(0, 3, (h // 2 + 1, w // 2 + 1)), np.ones((2, 2)))[:h, :w]
        ids = ids.astype(np.uint8)
        ids[rng.random((h, w)) < 0.08] = CLASS_NODATA
        got: list[tuple[int, shapely.Geometry]] = []
        strips = StripVectorizer(
            h, w, lambda c, p, found=got: found.extend(zip(c.tolist(), p, strict=True))
        )
        for row in range(0, h, rows):
            n = min(rows, h - row)
            part = ids[row : row + n]
            strips.add(PixelWindow(row, 0, n, w), part, part != CLASS_NODATA)
        strips.finish()
        want = whole_map_polygons(ids)
        got.sort(key=lambda t: (t[0], t[1].bounds))
        assert len(got) == len(want)
        for (c, p), (wc, wp) in zip(got, want, strict=True):
            assert c == wc and p.geom_type == "Polygon"
            assert p.symmetric_difference(wp).area == 0


@pytest.mark.parametrize(
    ("crs", "transform"),
    [
        ("EPSG:32633", GRID),
        ("EPSG:4326", Affine(0.0001, 0.0, 10.0, 0.0, -0.0001, 60.002)),
        ("EPSG:2229", Affine(3.0, 0.0, 6.4e6, 0.0, -3.0, 1.8e6)),
    ],
)
def test_polygon_areas_per_class_equal_the_rasters(
    tmp_path: Path, write_map, crs: str, transform: Affine
) -> None:
    rng = np.random.default_rng(1)
    ids = np.kron(rng.integers(0, NUM_CLASSES, (9, 8)), np.ones((5, 5), np.uint8))[:43, :37]
    ids = ids.astype(np.uint8)
    ids[rng.random(ids.shape) < 0.05] = CLASS_NODATA
    path = write_map(tmp_path / "m_mask.tif", ids, crs=crs, transform=transform)
    out = tmp_path / "m_polygons.gpkg"
    vectorize_class_map(str(path), str(out), strip_rows=6)
    raster = {c.class_id: c for c in scene_stats(str(path)).classes}
    features = read_gpkg(out)
    for class_id in range(NUM_CLASSES):
        mine = [f for f in features if f[0] == class_id]
        assert sum(f[2] for f in mine) == raster[class_id].pixels
        total = sum(f[3] for f in mine)
        assert total == pytest.approx(raster[class_id].area_m2, rel=1e-9, abs=1e-9)


def test_min_area_and_simplify(tmp_path: Path, write_map) -> None:
    ids = snake()
    path = write_map(tmp_path / "s_mask.tif", ids, transform=GRID)
    out = tmp_path / "s.gpkg"
    # The pond is 6 px = 600 m²: under 700 m² it is left out, everything else is kept.
    summary = vectorize_class_map(str(path), str(out), min_area_m2=700.0)
    classes = {f[1] for f in read_gpkg(out)}
    assert "water" not in classes and {"agriculture", "forest"} <= classes
    assert summary.dropped == 1
    plain = tmp_path / "plain.gpkg"
    simple = tmp_path / "simple.gpkg"
    vectorize_class_map(str(path), str(plain))
    vectorize_class_map(str(path), str(simple), simplify_px=3.0)
    vertices = [
        sum(shapely.get_num_coordinates(f[4]) for f in read_gpkg(p)) for p in (plain, simple)
    ]
    assert vertices[1] < vertices[0]
    assert all(f[4].is_valid for f in read_gpkg(simple))
    # Areas are the regions' pixel areas, measured before simplification.
    assert [f[3] for f in read_gpkg(simple)] == [f[3] for f in read_gpkg(plain)]


def test_geoparquet_has_its_geo_metadata_and_the_crs(tmp_path: Path, write_map) -> None:
    path = write_map(tmp_path / "s_mask.tif", snake(), transform=GRID)
    out = tmp_path / "s_polygons.parquet"
    vectorize_class_map(str(path), str(out), fmt="parquet", strip_rows=7)
    table = pq.read_table(out)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Polygon"]
    assert column["crs"]["id"] == {"authority": "EPSG", "code": 32633}
    assert table.column_names == [
        "class_id",
        "class_name",
        "pixels",
        "area_m2",
        "area_ha",
        "geometry",
    ]
    rows = table.to_pylist()
    forest = [r for r in rows if r["class_name"] == "forest"]
    assert len(forest) == 1 and forest[0]["area_ha"] == pytest.approx(forest[0]["pixels"] / 100)
    assert shapely.from_wkb(forest[0]["geometry"]).bounds[0] == pytest.approx(500020.0)


def test_a_map_without_crs_gives_pixel_polygons_and_no_crs(tmp_path: Path, write_map) -> None:
    path = write_map(tmp_path / "p_mask.tif", snake(), crs=None)
    out = tmp_path / "p.parquet"
    vectorize_class_map(str(path), str(out), fmt="parquet")
    geo = json.loads(pq.read_table(out).schema.metadata[b"geo"])
    assert geo["columns"]["geometry"]["crs"] is None  # "undefined", not the OGC:CRS84 default
    assert all(r["area_m2"] is None for r in pq.read_table(out).to_pylist())
    with pytest.raises(ValueError, match="--min-area needs pixel areas"):
        vectorize_class_map(str(path), str(out), min_area_m2=1.0)
    with_gsd = vectorize_class_map(str(path), str(out), min_area_m2=1.0, gsd_m=2.0)
    assert with_gsd.dropped == 0 and with_gsd.to_dict()["classes"][3]["area_m2"] > 0


def test_an_all_nodata_map_writes_an_empty_layer(tmp_path: Path, write_map) -> None:
    path = write_map(tmp_path / "e_mask.tif", np.full((8, 8), CLASS_NODATA, np.uint8))
    out = tmp_path / "e.gpkg"
    assert vectorize_class_map(str(path), str(out)).to_dict()["polygons"] == 0
    info = pyogrio.read_info(str(out))
    assert info["features"] == 0 and list(info["fields"])[:2] == ["class_id", "class_name"]


def test_the_command_writes_beside_the_maps_and_dead_letters_bad_ones(
    tmp_path: Path, write_map
) -> None:
    write_map(tmp_path / "a_mask.tif", snake(), transform=GRID)
    (tmp_path / "b_mask.tif").write_bytes(b"nope")
    assert vectorize_main(["--pred", str(tmp_path), "--format", "parquet"]) == 0
    assert (tmp_path / "a_polygons.parquet").exists()
    errors = list((tmp_path / "errors").glob("vectorize-*.jsonl"))
    assert len(errors) == 1 and "b_mask.tif" in errors[0].read_text()
    summary = run_vectorize(str(tmp_path / "a_mask.tif"), str(tmp_path / "o"))
    assert summary["written"] == 1 and (tmp_path / "o" / "a_polygons.gpkg").exists()


def test_the_clis_formats_are_the_writers() -> None:
    assert VECTOR_FORMATS == vector_files.VECTOR_FORMATS
