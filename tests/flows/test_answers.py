"""The whole chain inside the nightly flow on a georeferenced scene: a promoted model, a GeoTIFF
in incoming/, a self-describing COG, class areas (record, JSON, table artifact), polygons, the
STAC Item and Collection; a later scene of the same footprint brings change detection against
the earlier map, with its artifact."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from flows.answers import CHANGE_ARTIFACT_KEY, STATS_ARTIFACT_KEY, change_report
from flows.inference import nightly_inference
from flows.layout import Layout
from flows.registry import promote_if_better
from pipelines.answers.tables import read_parquet
from pipelines.core.palette import NUM_CLASSES
from pipelines.io.raster_describe import read_description
from pipelines.predict.options import PredictOptions


def tiny_model(folder: Path) -> None:
    """Class from colour: a 1x1 conv, so two different images give two different maps."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((None, None, 3))
    logits = keras.layers.Conv2D(NUM_CLASSES, 1)(image)
    out = keras.layers.Activation("softmax", dtype="float32")(logits * 8.0)
    folder.mkdir(parents=True)
    keras.Model(image, out).save(folder / "model.keras")


def geotiff(path: Path, seed: int, shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    blocks = rng.integers(1, 256, (12, 12, 3)).astype(np.uint8)
    image = np.kron(blocks, np.ones((16, 16, 1), np.uint8))  # 192² of 16 px patches
    transform = Affine(0.5, 0.0, 500000.0 + 0.5 * shift, 0.0, -0.5, 4000000.0)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": 192,
        "width": 192,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": transform,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image.transpose(2, 0, 1))


def read_artifact(key: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key}"
    return found[0].data


@pytest.mark.slow
def test_the_whole_chain_runs_inside_the_nightly_flow(
    prefect_harness: None, tmp_path: Path, stac_validate
) -> None:
    root = tmp_path / "root"
    layout = Layout(str(root))
    tiny_model(root / "models" / "unet" / "v1")
    pointer = {"arch": "unet", "version": "v1", "model_uri": str(root / "models/unet/v1")}
    assert promote_if_better(str(root), {**pointer, "val_miou": 0.5})
    incoming = Path(layout.incoming)
    incoming.mkdir(parents=True)
    geotiff(incoming / "2023_sat.tif", seed=1)
    past = time.time() - 86400
    os.utime(incoming / "2023_sat.tif", (past, past))  # it arrived yesterday
    options = PredictOptions(tile=64, overlap=16, vectors="gpkg")

    first = nightly_inference(root=str(root), inference=options)
    assert (first["predicted"], first["failed"]) == (1, 0)
    assert first["answers"]["change"] is None  # nothing earlier of this place
    out = Path(layout.predictions("unet-v1"))
    described = read_description(str(out / "2023_mask.tif"))
    assert described.tags["LANDCOVER_MODEL_VERSION"] == "v1"
    assert described.categories[3].name == "forest"
    record = json.loads((out / "2023.done.json").read_text())
    assert record["summary"]["stats"]["valid_area_m2"] == pytest.approx(192 * 192 * 0.25)
    assert (out / "2023_polygons.gpkg").exists()
    assert stac_validate(json.loads((out / "2023_item.json").read_text())) == []
    assert stac_validate(json.loads((out / "collection.json").read_text())) == []
    stats = read_artifact(STATS_ARTIFACT_KEY)
    rows = json.loads(stats) if isinstance(stats, str) else stats
    assert {r["scene_id"] for r in rows} == {"2023"}
    assert sum(r["area_ha"] for r in rows) == pytest.approx(192 * 192 * 0.25 / 1e4, rel=1e-3)

    # A new image of the same place (shifted by 32 px east): change against the 2023 map.
    geotiff(incoming / "2024_sat.tif", seed=2, shift=32)
    second = nightly_inference(root=str(root), inference=options)
    assert (second["predicted"], second["skipped"]) == (1, 1)
    change = second["answers"]["change"]
    assert change is not None and (change["pairs"], change["written"]) == (1, 1)
    folder = Path(change["output"])
    assert folder.parent == Path(layout.root) / "changes" / "unet-v1"
    matrix = json.loads((folder / "2023__2024_change.json").read_text())
    assert (matrix["before_id"], matrix["after_id"], matrix["regridded"]) == ("2023", "2024", True)
    # On the 2023 grid; the 32 columns 2024 does not cover are nodata.
    assert matrix["nodata_pixels"] == 192 * 32
    assert sum(map(sum, matrix["matrix_pixels"])) == 192 * 160
    assert sum(map(sum, matrix["matrix_ha"])) == pytest.approx(192 * 160 * 0.25 / 1e4)
    table = read_parquet(str(folder / "change_summary.parquet")).to_pylist()
    assert sum(r["pixels"] for r in table) == 192 * 160
    report = read_artifact(CHANGE_ARTIFACT_KEY)
    assert report == change_report(change) and "2023__2024" in report
    assert len(json.loads((out / "collection.json").read_text())["links"]) == 3  # root + 2 items
