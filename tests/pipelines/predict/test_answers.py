"""Predict writes the answers with each scene, before its record: provenance and class names
inside the COG, class areas, polygons (--vectors), a STAC Item, and per run a stats table and
the folder's Collection; block-parallel scenes answer like whole ones, within the seams."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import rasterio
import shapely
from affine import Affine

from pipelines.answers.stats import scene_stats
from pipelines.answers.tables import read_parquet
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.io.raster_describe import read_description
from pipelines.predict.job import run_predict
from pipelines.predict.options import PredictOptions

TILE, OVERLAP = 64, 16
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)


def geotiff(path: Path, image: np.ndarray) -> None:
    rgb = np.maximum(image.transpose(2, 0, 1), 1)
    rgb[:, :, :20] = 0  # a nodata border
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": image.shape[0],
        "width": image.shape[1],
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": TRANSFORM,
        "nodata": 0,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)


def polygons(path: Path) -> list[tuple[int, int, float, shapely.Geometry]]:
    _, _, geometry, fields = pyogrio.raw.read(str(path))
    return list(zip(fields[0], fields[2], fields[3], shapely.from_wkb(geometry), strict=True))


def test_each_scene_gets_its_answers_and_the_run_its_table_and_catalog(
    tmp_path: Path, model_dir: Path, make_image, stac_validate
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    geotiff(src / "g_sat.tif", make_image(200, 180, seed=5))
    options = PredictOptions(TILE, OVERLAP, vectors="gpkg")
    whole = run_predict(str(model_dir), str(src), str(tmp_path / "one"), options)
    blocks = run_predict(
        str(model_dir),
        str(src),
        str(tmp_path / "many"),
        PredictOptions(TILE, OVERLAP, vectors="gpkg", block_size=128),
    )
    assert whole["predicted"] == blocks["predicted"] == 1 and blocks["blocks"] == 4
    assert whole["predicted_ids"] == ["g"]
    for out in (tmp_path / "one", tmp_path / "many"):
        mask = out / "g_mask.tif"
        record = json.loads((out / "g.done.json").read_text())
        assert sorted(record["outputs"]) == [
            "g_item.json",
            "g_mask.tif",
            "g_mask.tif.aux.xml",
            "g_polygons.gpkg",
            "g_stats.json",
        ]
        # Provenance and class names inside the COG, category names in its side-car.
        described = read_description(str(mask))
        assert described.tags["LANDCOVER_MODEL_VERSION"] == model_dir.name
        assert described.tags["LANDCOVER_MODEL_SHA256"] == record["model"]["sha256"]
        assert described.tags["LANDCOVER_INPUT_SHA256"] == record["input"]["sha256"]
        assert json.loads(described.tags["LANDCOVER_OPTIONS"]) == record["options"]
        assert [c.name for c in described.categories] == list(CLASS_NAMES)
        # Areas: the record, the JSON beside the mask and the mask itself agree.
        stats = record["summary"]["stats"]
        assert stats == json.loads((out / "g_stats.json").read_text())
        again = scene_stats(str(mask), "g").to_dict()
        assert stats["classes"] == again["classes"]
        assert stats["nodata_pixels"] == 200 * 20 and stats["area"]["method"] == "projected"
        assert stats["valid_area_m2"] == pytest.approx(200 * 160 * 0.25)
        # Polygons: per class, their area is the raster's.
        found = polygons(out / "g_polygons.gpkg")
        for c in range(NUM_CLASSES):
            mine = [f for f in found if f[0] == c]
            assert sum(f[1] for f in mine) == stats["classes"][c]["pixels"]
        assert record["summary"]["vectors"]["polygons"] == len(found)
        # The STAC Item and the Collection, valid and relative.
        item = json.loads((out / "g_item.json").read_text())
        assert stac_validate(item) == []
        assert item["properties"]["landcover:model_version"] == model_dir.name
        assert set(item["assets"]) == {"mask", "mask_metadata", "vectors", "statistics"}
        collection = json.loads((out / "collection.json").read_text())
        assert stac_validate(collection) == []
        assert [link["href"] for link in collection["links"] if link["rel"] == "item"] == [
            "./g_item.json"
        ]
    # Whole and block-parallel scenes answer alike: each block runs its own tile grid, so a
    # model that sees further than the blend margin may flip pixels near the block seams
    # (bit-identity for models within the margin is test_streaming's); the areas cover the
    # same valid pixels and move by at most a seam's worth.
    one = json.loads((tmp_path / "one" / "g_stats.json").read_text())
    many = json.loads((tmp_path / "many" / "g_stats.json").read_text())
    pixels = [[c["pixels"] for c in answer["classes"]] for answer in (one, many)]
    assert sum(pixels[0]) == sum(pixels[1]) == 200 * 160
    assert [c["name"] for c in one["classes"]] == [c["name"] for c in many["classes"]]
    assert max(abs(a - b) for a, b in zip(*pixels, strict=True)) <= 0.02 * 200 * 160
    assert read_description(str(tmp_path / "one" / "g_mask.tif")).categories == (
        read_description(str(tmp_path / "many" / "g_mask.tif")).categories
    )
    # The run's table: one row per class of each scene of the input.
    parquet, csv = whole["stats_table"]
    table = read_parquet(parquet).to_pylist()
    assert [r["class_name"] for r in table] == list(CLASS_NAMES)
    assert {r["model_version"] for r in table} == {model_dir.name}
    assert Path(csv).read_text().count("\n") == 1 + NUM_CLASSES
    # A re-run predicts nothing, and still tables the scenes its records hold.
    rerun = run_predict(str(model_dir), str(src), str(tmp_path / "one"), options)
    assert (rerun["predicted"], rerun["skipped"], rerun["predicted_ids"]) == (0, 1, [])
    assert read_parquet(rerun["stats_table"][0]).num_rows == NUM_CLASSES


def test_png_scenes_get_deepglobe_areas_and_an_item_without_geometry(
    tmp_path: Path, model_dir: Path, make_image, encode_image, stac_validate
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "7_sat.png").write_bytes(encode_image(make_image(40, 50, seed=1), "PNG"))
    run_predict(str(model_dir), str(src), str(tmp_path / "out"), PredictOptions(TILE, OVERLAP))
    stats = json.loads((tmp_path / "out" / "7_stats.json").read_text())
    assert stats["area"]["method"] == "gsd" and "DeepGlobe" in stats["area"]["source"]
    assert stats["valid_area_m2"] == pytest.approx(40 * 50 * 0.25)
    item = json.loads((tmp_path / "out" / "7_item.json").read_text())
    assert item["geometry"] is None and item["assets"]["mask"]["type"] == "image/png"
    assert stac_validate(item) == []
