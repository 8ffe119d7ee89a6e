"""Every output format can be evaluated: predict's COGs against GeoTIFF label rasters, with the
grid checked, no data left out, read by strips, and a run that scores nothing refused."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from pipelines.core import metrics
from pipelines.core.geo import PixelWindow
from pipelines.core.palette import NUM_CLASSES, UNKNOWN, MaskRule
from pipelines.evaluate import cli
from pipelines.evaluate.job import NothingScoredError, evaluate, score_pair
from pipelines.io.raster_read import RasterInfo
from pipelines.io.raster_write import ClassMapWriter

CRS_WKT = CRS.from_epsg(32633).to_wkt()
TRANSFORM = from_origin(500_000, 4_000_000, 0.5, 0.5)


def _info(height: int, width: int, transform=TRANSFORM, crs: str | None = CRS_WKT) -> RasterInfo:
    return RasterInfo(
        uri="in.tif",
        driver="GTiff",
        width=width,
        height=height,
        count=3,
        dtype="uint8",
        crs=crs,
        transform=tuple(transform[:6]),  # type: ignore[arg-type]
        nodata=None,
        has_alpha=False,
        block_shape=(256, 256),
    )


def write_prediction(path: Path, ids: np.ndarray, valid: np.ndarray | None = None, **info) -> None:
    """A class-map COG exactly as predict writes it (uint8 ids, colour table, nodata 255)."""
    height, width = ids.shape
    with ClassMapWriter(str(path), _info(height, width, **info)) as writer:
        writer.write_window(PixelWindow(0, 0, height, width), ids, valid)


def write_label(
    path: Path, values: np.ndarray, *, nodata: int | None = None, transform=TRANSFORM, crs=CRS_WKT
) -> None:
    """A GeoTIFF label raster of class ids (or other values, for a label map)."""
    height, width = values.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=height, width=width, count=1, dtype="uint8",
        crs=crs, transform=transform, nodata=nodata, tiled=True, blockxsize=256, blockysize=256,
    ) as dst:  # fmt: skip
        dst.write(values, 1)


def _scenes(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.integers(0, 6, shape).astype(np.uint8)
    pred = np.where(rng.random(shape) < 0.7, truth, rng.integers(0, 6, shape)).astype(np.uint8)
    return truth, pred


def test_cog_predictions_score_against_geotiff_labels_with_nodata_left_out(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    pred_dir, truth_dir = tmp_path / "pred", tmp_path / "truth"
    pred_dir.mkdir(), truth_dir.mkdir()
    expected = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for scene_id, shape in {"a": (700, 300), "b": (90, 130)}.items():  # a: 2 strips
        truth, pred = _scenes(rng, shape)
        pred_valid = rng.random(shape) > 0.1  # predict's nodata: the input's no-data pixels
        truth_values = truth.copy()
        truth_values[:5] = 9  # the label raster's own nodata value
        write_prediction(pred_dir / f"{scene_id}_mask.tif", pred, pred_valid)
        write_label(truth_dir / f"{scene_id}_mask.tif", truth_values, nodata=9)
        scored = truth.copy()
        scored[:5] = UNKNOWN
        scored[~pred_valid] = UNKNOWN
        # predict's nodata reads as "unknown"; with the truth set unknown there, never scored
        expected += metrics.confusion_matrix(scored, np.where(pred_valid, pred, UNKNOWN))
    report = evaluate(str(pred_dir), str(truth_dir), str(tmp_path / "out"))
    assert report["scenes"] == 2 and report["failed"] == 0
    assert np.array_equal(np.asarray(report["confusion_matrix"]), expected)
    assert report["miou"] == pytest.approx(metrics.metrics_report(expected)["miou"])


def test_label_map_truths_against_cogs_through_the_cli(tmp_path: Path) -> None:
    """Truth values 10, 20, … mapped by ``--label-map`` (the API's ``rule``, the CLI's flag)."""
    rng = np.random.default_rng(4)
    truth, pred = _scenes(rng, (64, 80))
    (tmp_path / "pred").mkdir(), (tmp_path / "truth").mkdir()
    write_prediction(tmp_path / "pred" / "s_mask.tif", pred)
    write_label(tmp_path / "truth" / "s_mask.tif", ((truth + 1) * 10).astype(np.uint8))
    label_map = {(k + 1) * 10: k for k in range(6)}
    rule = MaskRule("ids", label_map)
    report = evaluate(
        str(tmp_path / "pred"), str(tmp_path / "truth"), str(tmp_path / "o"), rule=rule
    )
    assert np.array_equal(
        np.asarray(report["confusion_matrix"]), metrics.confusion_matrix(truth, pred)
    )
    flag = ",".join(f"{value}:{class_id}" for value, class_id in label_map.items())
    args = ["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    code = cli.main([*args, "--output", str(tmp_path / "cli"), "--label-map", flag])
    assert code == 0
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["scenes"] == 1


@pytest.mark.parametrize(
    ("label_args", "reason"),
    [
        ({"transform": from_origin(500_010, 4_000_000, 0.5, 0.5)}, "transform"),
        ({"crs": CRS.from_epsg(4326).to_wkt()}, "CRS differs"),
        ({"crs": None}, "CRS differs"),
    ],
)
def test_a_pair_on_two_grids_goes_to_errors_with_the_reason(
    tmp_path: Path, label_args: dict, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = np.zeros((32, 32), np.uint8)
    (tmp_path / "pred").mkdir(), (tmp_path / "truth").mkdir()
    write_prediction(tmp_path / "pred" / "a_mask.tif", ids)
    write_prediction(tmp_path / "pred" / "b_mask.tif", ids)
    write_label(tmp_path / "truth" / "a_mask.tif", ids, **label_args)
    write_label(tmp_path / "truth" / "b_mask.tif", ids[:, :30])  # size differs
    args = ["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    assert cli.main([*args, "--output", str(tmp_path / "out")]) == 1  # nothing scored
    err = capsys.readouterr().err
    assert "no scene scored: 2 prediction(s) and 2 truth(s) found, 2 paired" in err
    errors = [
        json.loads(line)
        for path in (tmp_path / "out" / "errors").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    reasons = {e["scene_id"]: e["reason"] for e in errors}
    assert reason in reasons["a"] and "differs from the truth's 30x32" in reasons["b"]


def test_a_run_with_no_pairs_exits_non_zero_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """COGs against PNG truths of other ids: it scored 0 scenes and exited 0."""
    (tmp_path / "pred").mkdir(), (tmp_path / "truth").mkdir()
    write_prediction(tmp_path / "pred" / "a_mask.tif", np.zeros((8, 8), np.uint8))
    write_label(tmp_path / "truth" / "b_mask.tif", np.zeros((8, 8), np.uint8))
    args = ["--pred", str(tmp_path / "pred"), "--truth", str(tmp_path / "truth")]
    assert cli.main([*args, "--output", str(tmp_path / "out")]) == 1
    assert "none with the same scene id" in capsys.readouterr().err
    with pytest.raises(NothingScoredError):
        evaluate(str(tmp_path / "pred"), str(tmp_path / "truth"), str(tmp_path / "out"))


def test_a_pair_is_read_by_strips(tmp_path: Path) -> None:
    """Peak Python-side memory (NumPy buffers are traced) scoring a 4096² pair stays a few
    strips' worth; reading it whole would take > 4096² × 8 bytes for the codes alone."""
    side = 4096
    rng = np.random.default_rng(5)
    truth, pred = _scenes(rng, (side, side))
    write_prediction(tmp_path / "p_mask.tif", pred)
    write_label(tmp_path / "t_mask.tif", truth)
    del truth, pred
    tracemalloc.start()
    try:
        cm, _ = score_pair(str(tmp_path / "p_mask.tif"), str(tmp_path / "t_mask.tif"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"scoring a {side}² COG/GeoTIFF pair: traced peak {peak / 2**20:.1f} MiB")
    assert int(cm.sum()) == side * side
    assert peak < 64 * 2**20, peak


def test_png_predictions_and_truths_of_every_format_pair_by_scene_id(tmp_path: Path) -> None:
    """What the train flow's val folders hold: predict's PNGs or COGs, beside truths that came
    as DeepGlobe PNGs or label GeoTIFFs (a plain PNG on one side: pixel grids are compared)."""
    from PIL import Image

    from pipelines.core.palette import CLASS_COLORS

    rng = np.random.default_rng(6)
    (tmp_path / "pred").mkdir(), (tmp_path / "truth").mkdir()
    expected = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for scene_id, pred_format, truth_format in (("p", "png", "tif"), ("c", "tif", "png")):
        truth, pred = _scenes(rng, (40, 50))
        if pred_format == "png":
            Image.fromarray(CLASS_COLORS[pred]).save(tmp_path / "pred" / f"{scene_id}_mask.png")
        else:
            write_prediction(tmp_path / "pred" / f"{scene_id}_mask.tif", pred)
        if truth_format == "png":
            Image.fromarray(CLASS_COLORS[truth]).save(tmp_path / "truth" / f"{scene_id}_mask.png")
        else:
            write_label(tmp_path / "truth" / f"{scene_id}_mask.tif", truth, crs=None)
        expected += metrics.confusion_matrix(truth, pred)
    report = evaluate(str(tmp_path / "pred"), str(tmp_path / "truth"), str(tmp_path / "out"))
    assert sorted(report["per_scene"]) == ["c", "p"]
    assert np.array_equal(np.asarray(report["confusion_matrix"]), expected)
