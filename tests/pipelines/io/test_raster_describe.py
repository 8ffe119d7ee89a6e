"""COGs that describe themselves: class names (category names + RAT), band descriptions and
provenance tags, read back through rasterio/GDAL, and still valid COGs; whole and assembled
class maps say the same."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning

from pipelines.core.geo import block_grid
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.io import storage
from pipelines.io.raster_cog import assemble_cog, inspect_cog
from pipelines.io.raster_describe import (
    Category,
    RasterDescription,
    read_description,
    sidecar_uri,
)
from pipelines.io.raster_read import RasterInfo
from pipelines.io.raster_write import (
    CLASS_NODATA,
    ClassMapWriter,
    ProbabilityWriter,
    TiledCogWriter,
    class_color_table,
    write_class_block,
)

PROVENANCE = {
    "LANDCOVER_MODEL_VERSION": "unet-20240601",
    "LANDCOVER_MODEL_SHA256": "ab" * 32,
    "LANDCOVER_INPUT_SHA256": "cd" * 32,
    "LANDCOVER_OPTIONS": '{"tile":512}',
}


def info(height: int = 700, width: int = 600, crs: str | None = "EPSG:32633") -> RasterInfo:
    return RasterInfo(
        uri="scene_sat.tif",
        driver="GTiff",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs=None if crs is None else CRS.from_string(crs).to_wkt(),
        transform=(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0),
        nodata=0,
        has_alpha=False,
        block_shape=(512, 512),
    )


def class_ids(height: int, width: int) -> np.ndarray:
    return (np.add.outer(np.arange(height) // 37, np.arange(width) // 53) % NUM_CLASSES).astype(
        np.uint8
    )


def write_class_map(path: str, scene: RasterInfo, **kwargs: object) -> list[str]:
    ids = class_ids(scene.height, scene.width)
    with ClassMapWriter(path, scene, **kwargs) as writer:  # type: ignore[arg-type]
        for window in block_grid(scene.height, scene.width, 256):
            writer.write_window(
                window, ids[window.row_off : window.row_stop, window.col_off : window.col_stop]
            )
    return writer.written


def test_a_class_map_names_its_classes_and_carries_provenance(tmp_path: Path) -> None:
    path = str(tmp_path / "s_mask.tif")
    written = write_class_map(path, info(), tags=PROVENANCE)
    assert written == [path, sidecar_uri(path)]
    described = read_description(path)
    # GDAL reads the category names and the RAT (from the side-car) as the classes.
    assert [c.name for c in described.categories] == list(CLASS_NAMES)
    assert [c.value for c in described.categories] == list(range(NUM_CLASSES))
    table = class_color_table()
    assert [c.color for c in described.categories] == [table[i] for i in range(NUM_CLASSES)]
    assert described.band_descriptions == ("land-cover class id (0..6, nodata 255)",)
    for key, value in PROVENANCE.items():
        assert described.tags[key] == value
    report = inspect_cog(path)
    assert report.valid and report.errors == () and report.warnings == ()


def test_names_and_provenance_are_inside_the_tiff_itself(tmp_path: Path) -> None:
    """Without its side-car (PAM off) the file still names its classes and its provenance."""
    path = str(tmp_path / "s_mask.tif")
    write_class_map(path, info(), tags=PROVENANCE)
    with rasterio.Env(GDAL_PAM_ENABLED=False), rasterio.open(path) as ds:
        assert ds.tags()["LANDCOVER_MODEL_VERSION"] == "unet-20240601"
        assert ds.tags(1)["CLASS_3"] == "forest"
        assert ds.descriptions[0].startswith("land-cover class id")
    os.remove(sidecar_uri(path))
    assert read_description(path).categories == ()  # category names live in the side-car only


def test_probabilities_say_which_class_each_band_holds_and_their_scale(tmp_path: Path) -> None:
    path = str(tmp_path / "s_probs.tif")
    scene = info(300, 200)
    with ProbabilityWriter(path, scene, tags=PROVENANCE) as writer:
        probabilities = np.full((300, 200, NUM_CLASSES), 1.0 / NUM_CLASSES, np.float32)
        writer.write_window(block_grid(300, 200, 512)[0], probabilities)
    assert writer.written == [path]  # no categories: no side-car
    described = read_description(path)
    assert described.band_descriptions[3] == "probability of forest (0..255 = 0..1)"
    assert described.scales == pytest.approx((1 / 255,) * NUM_CLASSES)
    assert described.tags["LANDCOVER_INPUT_SHA256"] == "cd" * 32
    assert inspect_cog(path).valid


def test_a_stale_sidecar_never_describes_new_pixels(tmp_path: Path) -> None:
    path = str(tmp_path / "x.tif")
    write_class_map(path, info(64, 64))
    assert os.path.exists(sidecar_uri(path))
    with TiledCogWriter(path, info(64, 64), count=1) as writer:  # no categories
        writer.write_bands(block_grid(64, 64, 64)[0], np.zeros((64, 64), np.uint8))
    assert writer.written == [path]
    assert not os.path.exists(sidecar_uri(path))


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("crs", ["EPSG:32633", None])
def test_assembled_blocks_describe_themselves_as_the_scene_written_whole(
    tmp_path: Path, crs: str | None
) -> None:
    scene = info(700, 600, crs)
    whole = str(tmp_path / "whole.tif")
    write_class_map(whole, scene, tags=PROVENANCE)
    ids = class_ids(scene.height, scene.width)
    blocks = []
    for n, window in enumerate(block_grid(scene.height, scene.width, 512)):
        uri = str(tmp_path / "blocks" / f"b{n}.tif")
        cut = ids[window.row_off : window.row_stop, window.col_off : window.col_stop]
        blocks.append(write_class_block(uri, scene, window, cut))
    assembled = str(tmp_path / "assembled.tif")
    from pipelines.io.raster_write import class_map_description

    written = assemble_cog(blocks, assembled, scene, description=class_map_description(PROVENANCE))
    assert written == [assembled, sidecar_uri(assembled)]
    assert read_description(assembled) == read_description(whole)
    assert inspect_cog(assembled).valid
    with rasterio.open(whole) as a, rasterio.open(assembled) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_description_round_trips_on_gcs(tmp_path: Path, gcs_root: str) -> None:
    uri = f"{gcs_root}/s_mask.tif"
    written = write_class_map(uri, info(64, 64), tags=PROVENANCE)
    assert written == [uri, sidecar_uri(uri)] and all(storage.exists(u) for u in written)
    described = read_description(uri)
    assert described.categories[4].name == "water"
    assert described.tags["LANDCOVER_MODEL_SHA256"] == "ab" * 32


def test_any_thematic_description_round_trips(tmp_path: Path) -> None:
    """A RAT with gaps in its values (as a change map's codes have) reads back the same."""
    categories = (
        Category(0, "urban → urban", (10, 20, 30, 255)),
        Category(5, "urban → barren", (1, 2, 3, 128)),
    )
    description = RasterDescription(
        tags={"K": "v"}, band_descriptions=("codes",), categories=categories
    )
    assert description.category_names == ("urban → urban", "", "", "", "", "urban → barren")
    path = str(tmp_path / "c.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with TiledCogWriter(
            path, info(32, 32), count=1, nodata=CLASS_NODATA, description=description
        ) as writer:
            writer.write_bands(block_grid(32, 32, 32)[0], np.full((32, 32), 5, np.uint8))
    back = read_description(path)
    assert back.categories == categories and back.tags == {"K": "v"}
    assert back.band_descriptions == ("codes",)


def test_category_values_must_be_distinct() -> None:
    with pytest.raises(ValueError, match="distinct"):
        RasterDescription(categories=(Category(1, "a", (0, 0, 0, 255)),) * 2)


def test_unaffected_transform_still_round_trips(tmp_path: Path) -> None:
    path = str(tmp_path / "s_mask.tif")
    write_class_map(path, info(), tags=PROVENANCE)
    with rasterio.open(path) as ds:
        assert ds.transform == Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)
        assert ds.nodata == CLASS_NODATA and ds.colorinterp[0].name == "palette"
