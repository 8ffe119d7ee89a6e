"""The predict job and GSDs: a scene at another GSD than the model's is predicted at the model's
and written on its own grid, equal to predicting the resampled scene and resampling back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipelines.core.geo import PixelWindow
from pipelines.core.resample import Regrid, apply_taps, make_taps
from pipelines.predict.job import run_predict
from pipelines.predict.options import PredictOptions

TILE, OVERLAP = 64, 16
UTM33 = "EPSG:32633"


def _geotiff(path: Path, image: np.ndarray, pixel: float, crs: str | None = UTM33) -> None:
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": image.shape[0],
        "width": image.shape[1],
        "count": 3,
        "dtype": "uint8",
        "transform": Affine(pixel, 0.0, 500000.0, 0.0, -pixel, 4000000.0),
    }
    if crs is not None:
        profile["crs"] = crs
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image.transpose(2, 0, 1))


def _bands(path: Path) -> tuple[np.ndarray, Any]:
    with rasterio.open(path) as ds:
        return ds.read(), (ds.crs, ds.transform, ds.width, ds.height)


def _record(folder: Path, scene_id: str) -> dict[str, Any]:
    return json.loads((folder / f"{scene_id}.done.json").read_text())


def _model_at(folder: Path, model_dir: Path, metres: float) -> Path:
    """The tiny model with a metadata.json saying it was trained at ``metres``."""
    folder.mkdir()
    shutil.copy(model_dir / "model.keras", folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps({"input": {"gsd_m": metres}}))
    return folder


def _back(model_grid: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest from the model grid back to the scene's (..., H, W) grid."""
    rows = make_taps(model_grid.shape[-2], shape[0], "nearest").index[:, 0]
    cols = make_taps(model_grid.shape[-1], shape[1], "nearest").index[:, 0]
    return model_grid[..., rows, :][..., cols]


def test_a_scene_at_twice_the_model_gsd_equals_predicting_it_resampled_and_back(
    tmp_path: Path, model_dir: Path, make_image
) -> None:
    model = _model_at(tmp_path / "model", model_dir, 0.5)
    image = make_image(70, 90, seed=5)
    _geotiff(tmp_path / "coarse" / "s_sat.tif", image, pixel=1.0)  # twice the model's GSD
    # the reference: the same scene resampled to 0.5 m by a whole-array pass, predicted as is
    regrid = Regrid.between((70, 90), (140, 180))
    everything = PixelWindow(0, 0, 70, 90)
    fine, _ = regrid.pixels(PixelWindow(0, 0, 140, 180), image, np.ones((70, 90), bool), everything)
    _geotiff(tmp_path / "fine" / "s_sat.tif", fine, pixel=0.5)

    def run(folder: str, out: str, **kw: Any) -> dict[str, Any]:
        options = PredictOptions(TILE, OVERLAP, probabilities=kw.pop("probs", True), **kw)
        return run_predict(str(model), str(tmp_path / folder), str(tmp_path / out), options)

    coarse = run("coarse", "out")
    reference = run("fine", "ref")
    assert coarse["gsd"] == {"model_m": 0.5, "override_m": None, "resampled_scenes": 1}
    assert reference["gsd"]["resampled_scenes"] == 0
    mask, meta = _bands(tmp_path / "out" / "s_mask.tif")
    ref_mask, _ = _bands(tmp_path / "ref" / "s_mask.tif")
    assert meta == (rasterio.crs.CRS.from_string(UTM33), Affine(1, 0, 5e5, 0, -1, 4e6), 90, 70)
    assert np.array_equal(mask[0], _back(ref_mask[0], (70, 90)))
    assert len(np.unique(mask)) > 2  # a map, not a constant
    probs, probs_meta = _bands(tmp_path / "out" / "s_probs.tif")
    ref_probs, _ = _bands(tmp_path / "ref" / "s_probs.tif")
    assert probs_meta == meta and probs.shape == (7, 70, 90)
    # bilinear back from the quantised reference: within one level of 255
    rows = make_taps(140, 70, "bilinear")
    cols = make_taps(180, 90, "bilinear")
    expected = apply_taps(apply_taps(ref_probs.astype(np.float32), rows, 1), cols, 2)
    assert np.abs(probs.astype(np.float32) - expected).max() <= 1.0
    summary = _record(tmp_path / "out", "s")["summary"]
    assert summary["gsd"]["resampled"] and summary["gsd"]["model_grid"] == [140, 180]
    assert summary["gsd"]["scene_m"] == [1.0, 1.0]
    assert summary["gsd"]["image"] == "bilinear" and summary["gsd"]["classes"] == "nearest"
    assert "written on the input's own 70x90 grid" in summary["gsd"]["note"]
    assert (summary["height"], summary["width"]) == (70, 90)
    assert _record(tmp_path / "out", "s")["options"]["gsd"] == {
        "scene_m": [1.0, 1.0],
        "model_m": 0.5,
    }
    ref_summary = _record(tmp_path / "ref", "s")["summary"]["gsd"]
    assert ref_summary["resampled"] is False and ref_summary["model_m"] == 0.5

    # block-parallel: the same map but where each block's own tile grid puts a pixel at another
    # place in its tile, which a model that sees past the blend margin may answer differently
    # (test_streaming holds the exact case)
    blocks = run("coarse", "blocks", probs=False, block_size=32)
    assert blocks["blocks"] == 9
    block_mask, _ = _bands(tmp_path / "blocks" / "s_mask.tif")
    differ = block_mask[0] != mask[0]
    assert differ.mean() <= 0.02  # 31 of 6300 pixels when measured
    assert _record(tmp_path / "blocks", "s")["summary"]["gsd"]["model_grid"] == [140, 180]

    # a file whose transform is wrong (0.5 m) is set right by --gsd 1: the same map
    _geotiff(tmp_path / "wrong" / "s_sat.tif", image, pixel=0.5)
    fixed = run("wrong", "fixed", probs=False, gsd=1.0)
    assert fixed["gsd"]["override_m"] == 1.0 and fixed["gsd"]["resampled_scenes"] == 1
    assert np.array_equal(_bands(tmp_path / "fixed" / "s_mask.tif")[0], mask)
    assert _record(tmp_path / "fixed", "s")["summary"]["gsd"]["scene_source"] == "--gsd"
    # the GSD is in the fingerprint: without the override the scene is predicted again
    again = run("wrong", "fixed", probs=False)
    assert (again["predicted"], again["skipped"], again["gsd"]["resampled_scenes"]) == (1, 0, 0)


def test_jpeg_and_png_scenes_default_to_deepglobe_gsd_and_unknown_ones_are_refused(
    tmp_path: Path, model_dir: Path, make_image, encode_image
) -> None:
    model = _model_at(tmp_path / "model", model_dir, 0.25)
    src = tmp_path / "in"
    src.mkdir()
    (src / "p_sat.png").write_bytes(encode_image(make_image(40, 50, seed=1), "PNG"))
    _geotiff(src / "n_sat.tif", make_image(30, 30, seed=2), pixel=0.5, crs=None)
    out = tmp_path / "out"
    summary = run_predict(str(model), str(src), str(out), PredictOptions(TILE, OVERLAP))
    assert (summary["predicted"], summary["failed"]) == (1, 1)
    (errors,) = summary["errors"]
    (line,) = map(json.loads, Path(errors).read_text().splitlines())
    assert line["scene_id"] == "n"
    assert "no CRS, so the unit of its pixel size is unknown" in line["reason"]
    assert "--gsd" in line["reason"]
    from PIL import Image

    assert Image.open(out / "p_mask.png").size == (50, 40)  # the input's own grid
    facts = _record(out, "p")["summary"]["gsd"]
    assert facts["model_grid"] == [80, 100] and facts["scene_m"] == [0.5, 0.5]
    assert "DeepGlobe" in facts["scene_source"]
    declared = run_predict(
        str(model), str(src), str(tmp_path / "declared"), PredictOptions(TILE, OVERLAP, gsd=0.25)
    )
    assert (declared["predicted"], declared["failed"], declared["gsd"]["resampled_scenes"]) == (
        2,
        0,
        0,
    )


@pytest.mark.parametrize("text", ["[1, 2]", "{not json", '{"input": {"gsd_m": -1}}'])
def test_a_metadata_file_that_says_no_usable_gsd_stops_the_run_naming_it(
    tmp_path: Path, model_dir: Path, text: str
) -> None:
    folder = _model_at(tmp_path / "model", model_dir, 0.5)
    (folder / "metadata.json").write_text(text)
    (tmp_path / "in").mkdir()
    with pytest.raises(ValueError, match=r"metadata.json: cannot read the model's GSD"):
        run_predict(str(folder), str(tmp_path / "in"), str(tmp_path / "out"))
