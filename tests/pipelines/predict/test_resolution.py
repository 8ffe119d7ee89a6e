"""Which GSD a scene is predicted at: the model's metadata, the scene's own, --gsd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.core.errors import BadInputError
from pipelines.io.raster_read import RasterInfo
from pipelines.predict.resolution import NO_MODEL_GSD, read_model_gsd, scene_resolution

NO_CRS = RasterInfo(
    uri="/in/n_sat.tif",
    driver="GTiff",
    width=8,
    height=8,
    count=3,
    dtype="uint8",
    crs=None,
    transform=(0.5, 0.0, 100.0, 0.0, -0.5, 100.0),
    nodata=None,
    has_alpha=False,
    block_shape=(8, 8),
)


def test_the_model_gsd_comes_from_metadata_beside_the_model(tmp_path: Path) -> None:
    model = tmp_path / "model.keras"
    assert read_model_gsd(str(model)) is None  # no metadata.json: unknown
    (tmp_path / "metadata.json").write_text(json.dumps({"input": {"gsd_m": 2.390625}}))
    assert read_model_gsd(str(model)) == 2.390625
    (tmp_path / "metadata.json").write_text(json.dumps({"input": {"patch_size": 612}}))
    assert read_model_gsd(str(model)) is None  # trained before GSDs were recorded
    (tmp_path / "metadata.json").write_text(json.dumps({"input": {"gsd_m": "half"}}))
    with pytest.raises(ValueError, match=r"metadata.json: cannot read the model's GSD"):
        read_model_gsd(str(model))


def test_scenes_are_resampled_only_beyond_one_percent_of_the_model_gsd() -> None:
    gsd, facts = scene_resolution("/in/a_sat.jpg", None, None, 0.5)
    assert gsd is None and facts["resampled"] is False and facts["model_m"] == 0.5
    gsd, _ = scene_resolution("/in/a_sat.jpg", None, 0.504, 0.5)
    assert gsd is None
    gsd, facts = scene_resolution("/in/a_sat.jpg", None, 1.0, 0.5)
    assert gsd is not None and gsd.metres == 1.0 and facts == {}


def test_without_a_model_gsd_nothing_is_resampled_and_the_record_says_why() -> None:
    gsd, facts = scene_resolution("/in/a_sat.jpg", None, 2.0, None)
    assert gsd is None and facts["scene_m"] == [2.0, 2.0] and facts["note"] == NO_MODEL_GSD
    gsd, facts = scene_resolution(NO_CRS.uri, NO_CRS, None, None)
    assert gsd is None and facts["scene_m"] is None
    assert "the scene's is unknown" in facts["note"] and "no CRS" in facts["note"]


def test_an_unknown_scene_gsd_is_bad_input_when_the_model_has_one() -> None:
    with pytest.raises(BadInputError, match="no CRS, so the unit of its pixel size is unknown"):
        scene_resolution(NO_CRS.uri, NO_CRS, None, 0.5)
    gsd, _ = scene_resolution(NO_CRS.uri, NO_CRS, 1.0, 0.5)  # --gsd sets it
    assert gsd is not None and gsd.source == "--gsd"
