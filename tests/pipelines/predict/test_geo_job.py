"""The predict job on georeferenced rasters: COG output, nodata, blocks, records, bad windows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine

from pipelines.core.provenance import OutputRecord
from pipelines.io.raster_cog import inspect_cog
from pipelines.io.raster_write import CLASS_NODATA
from pipelines.predict.job import run_predict
from pipelines.predict.options import PredictOptions

TILE, OVERLAP = 64, 16
UTM33 = "EPSG:32633"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)


def _geotiff(path: Path, image: np.ndarray, *, crs: str | None = UTM33, border: int = 0, **kw):
    """RGB GeoTIFF; ``border`` left columns are zero and declared nodata."""
    rgb = image.transpose(2, 0, 1).copy()
    rgb[rgb == 0] = 1
    rgb[:, :, :border] = 0
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": image.shape[0],
        "width": image.shape[1],
        "count": 3,
        "dtype": "uint8",
        "transform": TRANSFORM,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        **kw,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(rgb)


def _read(path: Path) -> tuple[np.ndarray, Any]:
    with rasterio.open(path) as ds:
        return ds.read(1), (ds.crs, ds.transform, ds.width, ds.height, ds.nodata)


def _record(folder: Path, scene_id: str) -> dict[str, Any]:
    return json.loads((folder / f"{scene_id}.done.json").read_text())


def test_georeferenced_scene_gives_an_exact_cog_and_blocks_equal_the_single_worker_path(
    tmp_path: Path, model_dir: Path, make_image
):
    src = tmp_path / "in"
    src.mkdir()
    _geotiff(src / "geo_sat.tif", make_image(301, 257, seed=1), border=70)
    _geotiff(src / "nocrs_sat.tif", make_image(90, 77, seed=2), crs=None)
    single = run_predict(
        str(model_dir), str(src), str(tmp_path / "one"), PredictOptions(TILE, OVERLAP, block_size=0)
    )
    blocks = run_predict(
        str(model_dir),
        str(src),
        str(tmp_path / "many"),
        PredictOptions(TILE, OVERLAP, block_size=128),
    )
    assert (single["predicted"], single["failed"], single["blocks"]) == (2, 0, 0)
    assert (blocks["predicted"], blocks["failed"], blocks["blocks"]) == (2, 0, 9)
    assert single["tiles_skipped_nodata"] > 0
    assert single["nodata_pixels"] == 301 * 70
    assert single["warnings"] == ["1 scene(s): no CRS: output has no georeference"]
    one, meta = _read(tmp_path / "one" / "geo_mask.tif")
    many, meta_many = _read(tmp_path / "many" / "geo_mask.tif")
    np.testing.assert_array_equal(one, many)
    assert meta == meta_many == (rasterio.crs.CRS.from_string(UTM33), TRANSFORM, 257, 301, 255)
    assert (one[:, :70] == CLASS_NODATA).all() and (one[:, 70:] < 7).all()
    report = inspect_cog(str(tmp_path / "many" / "geo_mask.tif"))
    assert report.valid, report.errors
    assert report.block_shape == (512, 512) and report.colormap is not None
    assert not list((tmp_path / "many").glob("_blocks/**/*.tif"))  # blocks cleaned up
    record = _record(tmp_path / "many", "geo")
    assert record["summary"]["crs"] and record["summary"]["blocks"] == 9
    assert record["summary"]["nodata_pixels"] == 301 * 70
    # The mask, its side-car of class names, and the answers: every one checksummed.
    assert sorted(record["outputs"]) == [
        "geo_item.json",
        "geo_mask.tif",
        "geo_mask.tif.aux.xml",
        "geo_stats.json",
    ]
    assert record["summary"]["stats"]["nodata_pixels"] == 301 * 70
    nocrs = _record(tmp_path / "one", "nocrs")["summary"]
    assert nocrs["crs"] is None and nocrs["warnings"] == ["no CRS: output has no georeference"]
    _, nocrs_meta = _read(tmp_path / "one" / "nocrs_mask.tif")
    assert nocrs_meta[0] is None and nocrs_meta[1] == TRANSFORM
    # --format png overrides the default for a georeferenced input
    png = run_predict(
        str(model_dir), str(src), str(tmp_path / "png"), PredictOptions(TILE, OVERLAP, format="png")
    )
    assert png["predicted"] == 2 and (tmp_path / "png" / "geo_mask.png").exists()


def test_bad_windows_and_band_counts_fail_that_scene_only(
    tmp_path: Path, model_dir: Path, make_image
):
    src = tmp_path / "in"
    src.mkdir()
    _geotiff(src / "good_sat.tif", make_image(70, 80, seed=3))
    _geotiff(src / "cut_sat.tif", make_image(300, 300, seed=4), compress="deflate")
    data = (src / "cut_sat.tif").read_bytes()
    (src / "cut_sat.tif").write_bytes(data[: len(data) * 2 // 3])
    with rasterio.open(
        src / "gray_sat.tif", "w", driver="GTiff", height=20, width=20, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((1, 20, 20), np.uint8))
    out = tmp_path / "out"
    summary = run_predict(str(model_dir), str(src), str(out), PredictOptions(TILE, OVERLAP))
    assert (summary["predicted"], summary["failed"]) == (1, 2)
    (errors,) = summary["errors"]
    lines = {r["scene_id"]: r for r in map(json.loads, Path(errors).read_text().splitlines())}
    assert "cannot read window (row" in lines["cut"]["reason"]
    assert lines["cut"]["uri"].endswith("cut_sat.tif")
    assert "has 1 bands" in lines["gray"]["reason"]
    assert not (out / "cut.done.json").exists()


def test_done_records_decide_what_is_recomputed(
    tmp_path: Path, model_dir: Path, make_image, encode_image, monkeypatch: pytest.MonkeyPatch
):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i, name in enumerate("abcd"):
        (src / f"{name}_sat.png").write_bytes(encode_image(make_image(40, 50, seed=i), "PNG"))

    def run(model: Path = model_dir, **kw: Any) -> dict[str, Any]:
        return run_predict(str(model), str(src), str(out), PredictOptions(TILE, OVERLAP, **kw))

    assert run()["predicted"] == 4
    record = OutputRecord.from_json((out / "a.done.json").read_text())
    assert set(record.outputs) == {"a_mask.png", "a_stats.json", "a_item.json"}
    assert record.summary["tiles_run"] == 1

    # same inputs, same model: skipped without running the model
    import models.serving

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the model ran for a done scene")

    with monkeypatch.context() as patch:
        patch.setattr(models.serving, "predict_tiles", boom)
        assert (run()["skipped"], run()["predicted"]) == (4, 0)

    (src / "a_sat.png").write_bytes(encode_image(make_image(40, 50, seed=9), "PNG"))  # changed
    mask = out / "b_mask.png"
    mask.write_bytes(mask.read_bytes()[:30])  # truncated output
    (out / "c.done.json").write_text('{"schema_version": 1, "subj')  # garbled record
    again = run()
    assert (again["predicted"], again["skipped"]) == (3, 1)
    assert OutputRecord.from_json(mask.with_name("b.done.json").read_text())
    assert len(mask.read_bytes()) > 30

    other = tmp_path / "model2"
    other.mkdir()
    # a changed model (other bytes: a zip that still loads) recomputes every scene
    (other / "model.keras").write_bytes((model_dir / "model.keras").read_bytes() + b"\0")
    assert run(other)["predicted"] == 4
    assert run(other)["skipped"] == 4
    assert run(tta="flip")["predicted"] == 4  # an option that changes the output


@pytest.mark.slow
def test_sigkill_at_each_point_then_rerun_leaves_exactly_one_current_output_set(
    tmp_path: Path, model_dir: Path, make_image, encode_image
):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        (src / f"s{i}_sat.png").write_bytes(encode_image(make_image(40, 50, seed=i), "PNG"))
    _geotiff(src / "g_sat.tif", make_image(150, 140, seed=7))
    code = (
        "import sys; from pipelines.predict.job import run_predict; "
        "from pipelines.predict.options import PredictOptions; "
        f"run_predict({str(model_dir)!r}, {str(src)!r}, {str(out)!r}, PredictOptions(tile={TILE}, "
        f"overlap={OVERLAP}, block_size=64, scenes_per_wave=1))"
    )
    for point in ("after-mask-before-record", "after-outputs-before-record"):
        env = {**os.environ, "LANDCOVER_FAULT_POINT": point}
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
        assert not list(out.glob("*.done.json"))  # killed before the first commit
    summary = run_predict(
        str(model_dir), str(src), str(out), PredictOptions(TILE, OVERLAP, block_size=64)
    )
    assert (summary["predicted"], summary["failed"], summary["skipped"]) == (4, 0, 0)
    again = run_predict(
        str(model_dir), str(src), str(out), PredictOptions(TILE, OVERLAP, block_size=64)
    )
    assert (again["predicted"], again["skipped"]) == (0, 4)
    from pipelines.io.integrity import verify_outputs

    for scene in ("s0", "s1", "s2", "g"):
        record = OutputRecord.from_json((out / f"{scene}.done.json").read_text())
        assert verify_outputs(record, str(out)) == []
