"""STAC Items and the Collection: valid against the STAC 1.1 and extension schemas kept in the
test fixtures (offline), footprints in WGS 84, relative links, checksums that match the files."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from affine import Affine

from pipelines.answers.classmap import read_class_map_info
from pipelines.answers.stac import (
    COG_MEDIA_TYPE,
    AssetFile,
    collection_of,
    footprint,
    read_items,
    scene_item,
    update_collection,
    write_item,
)
from pipelines.answers.stats import scene_stats
from pipelines.core.palette import NUM_CLASSES
from pipelines.core.provenance import InputRef, ModelRef

MODEL = ModelRef(uri="/m/model.keras", version="unet-v1", sha256="ab" * 32)
WHEN = dt.datetime(2024, 6, 1, 2, 0, tzinfo=dt.UTC)


def item_for(folder: Path, scene_id: str, write_map, **grid) -> dict:  # type: ignore[no-untyped-def]
    ids = (sum(__import__("numpy").indices((20, 30))) % NUM_CLASSES).astype("uint8")
    mask = write_map(folder / f"{scene_id}_mask.tif", ids, **grid)
    stats = scene_stats(str(mask)).to_dict()
    stats_file = folder / f"{scene_id}_stats.json"
    stats_file.write_text(json.dumps(stats))
    return scene_item(
        scene_id=scene_id,
        collection_id=folder.name,
        grid=read_class_map_info(str(mask)),
        mask=AssetFile("mask", str(mask), COG_MEDIA_TYPE, ("data",), "class map"),
        others=[
            AssetFile("statistics", str(stats_file), "application/json", ("metadata",), "areas")
        ],
        model=MODEL,
        source=InputRef(uri=f"gs://b/incoming/{scene_id}_sat.tif", size=10, sha256="cd" * 32),
        options={"tile": 512},
        stats=stats,
        acquired=WHEN,
        datetime_source="input file's modification time",
        created=WHEN,
    )


def test_an_item_is_valid_and_says_where_what_and_from_what(
    tmp_path: Path, write_map, stac_validate
) -> None:
    item = item_for(tmp_path, "s1", write_map, transform=Affine(10, 0, 500000, 0, -10, 4000000))
    assert stac_validate(item) == []
    assert item["stac_version"] == "1.1.0"
    props = item["properties"]
    assert props["proj:code"] == "EPSG:32633" and props["proj:shape"] == [20, 30]
    assert props["proj:transform"] == [10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0]
    assert props["landcover:model_version"] == "unet-v1"
    assert props["landcover:input_sha256"] == "cd" * 32
    assert props["datetime"] == "2024-06-01T02:00:00Z"
    # 500000 E, 4000000 N in UTM 33N is 15°E, 36.14°N.
    west, south, east, north = item["bbox"]
    assert west == pytest.approx(15.0, abs=1e-6) and north == pytest.approx(36.1447, abs=1e-3)
    assert east - west == pytest.approx(300 / 90000, rel=0.05) and south < north
    mask = item["assets"]["mask"]
    assert mask["href"] == "./s1_mask.tif" and mask["type"] == COG_MEDIA_TYPE
    data = (tmp_path / "s1_mask.tif").read_bytes()
    assert mask["file:size"] == len(data)
    assert mask["file:checksum"] == "1220" + hashlib.sha256(data).hexdigest()
    classes = {c["value"]: c for c in mask["classification:classes"]}
    assert classes[3]["name"] == "forest" and classes[3]["color_hint"] == "00FF00"
    assert classes[3]["count"] > 0 and classes[255]["nodata"] is True
    assert sum(classes[v]["count"] for v in range(NUM_CLASSES)) == 600
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["collection"] == "./collection.json" and links["root"] == "./collection.json"
    assert links["derived_from"] == "gs://b/incoming/s1_sat.tif"
    assert not any(link["rel"] == "self" for link in item["links"])


def test_the_validator_catches_a_broken_item(tmp_path: Path, write_map, stac_validate) -> None:
    """The check can fail: a class name the classification schema forbids, a bad checksum."""
    item = item_for(tmp_path, "s1", write_map, transform=Affine(10, 0, 500000, 0, -10, 4000000))
    item["assets"]["mask"]["classification:classes"][0]["name"] = "urban → forest"
    item["assets"]["mask"]["file:checksum"] = "not hex"
    del item["properties"]["datetime"]
    errors = stac_validate(item)
    assert any("classification" in e for e in errors)
    assert any("file" in e and "checksum" in e for e in errors)
    assert any("datetime" in e for e in errors)


def test_geographic_feet_and_no_crs_items_are_valid(
    tmp_path: Path, write_map, stac_validate
) -> None:
    geo = item_for(
        tmp_path, "g", write_map, crs="EPSG:4326", transform=Affine(1e-4, 0, 10, 0, -1e-4, 60)
    )
    assert geo["bbox"] == pytest.approx([10.0, 59.998, 10.003, 60.0])
    feet = item_for(
        tmp_path, "f", write_map, crs="EPSG:2229", transform=Affine(3, 0, 6.4e6, 0, -3, 1.8e6)
    )
    plain = item_for(tmp_path, "p", write_map, crs=None)
    assert plain["geometry"] is None and "bbox" not in plain
    assert plain["properties"]["proj:code"] is None
    custom = item_for(
        tmp_path,
        "c",
        write_map,
        crs="+proj=tmerc +lat_0=0 +lon_0=11.5 +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m",
        transform=Affine(1, 0, 0, 0, -1, 5e6),
    )
    assert custom["properties"]["proj:code"] is None
    assert custom["properties"]["proj:wkt2"].startswith("PROJCRS")
    for item in (geo, feet, plain, custom):
        assert stac_validate(item) == [], item["id"]


def test_the_collection_is_rebuilt_from_the_items_atomically_with_relative_links(
    tmp_path: Path, write_map, stac_validate
) -> None:
    folder = tmp_path / "unet-v1"
    for n, x in enumerate((500000, 600000)):
        write_item(
            str(folder),
            item_for(folder, f"s{n}", write_map, transform=Affine(10, 0, x, 0, -10, 4000000)),
        )
    write_item(str(folder), item_for(folder, "p", write_map, crs=None))
    (folder / "junk_item.json").write_text("{not json")
    uri = update_collection(str(folder))
    collection = json.loads(Path(uri).read_text())
    assert stac_validate(collection) == []
    assert collection["id"] == "unet-v1" and collection["license"] == "other"
    items = sorted(link["href"] for link in collection["links"] if link["rel"] == "item")
    assert items == ["./p_item.json", "./s0_item.json", "./s1_item.json"]
    (bbox,) = collection["extent"]["spatial"]["bbox"]
    assert bbox[0] == pytest.approx(15.0, abs=1e-6) and bbox[2] > 16.0  # both UTM scenes
    assert collection["extent"]["temporal"]["interval"] == [
        ["2024-06-01T02:00:00Z", "2024-06-01T02:00:00Z"]
    ]
    assert [i["id"] for i in read_items(str(folder))] == ["p", "s0", "s1"]
    assert not list(folder.glob("*.tmp-*"))
    empty = collection_of([], collection_id="none", description="no scenes yet")
    assert stac_validate(empty) == []


def test_footprint_follows_curved_edges() -> None:
    """A UTM grid far from its central meridian: the WGS 84 outline is not a rectangle."""
    from rasterio.crs import CRS

    from pipelines.answers.classmap import ClassMapInfo

    grid = ClassMapInfo(
        uri="x",
        width=1000,
        height=1000,
        crs=CRS.from_epsg(32633).to_wkt(),
        transform=(100.0, 0.0, 200000.0, 0.0, -100.0, 6000000.0),
        nodata=255,
        encoding="ids",
    )
    geometry, bbox = footprint(grid)
    assert geometry is not None and bbox is not None
    ring = geometry["coordinates"][0]
    assert len(ring) == 4 * 20 + 1 and ring[0] == ring[-1]
    top_left, bottom_left = ring[0], ring[60]
    assert abs(top_left[0] - bottom_left[0]) > 0.05  # the west edge is not a meridian
    assert bbox[0] == pytest.approx(min(p[0] for p in ring))
