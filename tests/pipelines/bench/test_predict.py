"""``landcover bench predict``: parsing, the derived figures and one real case on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from pipelines.bench import predict as bench
from pipelines.core.tiling import TILE_SIZE, model_pixels_per_scene_pixel


def test_parse_candidates_reads_tile_over_overlap() -> None:
    assert bench.parse_candidates("612/64, 1024/64,1280/64") == [(612, 64), (1024, 64), (1280, 64)]


@pytest.mark.parametrize("text", ["612", "612/x", "a/64", ",", ""])
def test_parse_candidates_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        bench.parse_candidates(text)


def test_write_geotiff_is_tiled_georeferenced_rgb(tmp_path) -> None:
    path = str(tmp_path / "big_sat.tif")
    bench.write_geotiff(path, 300, block=128)
    with rasterio.open(path) as dataset:
        assert (dataset.width, dataset.height, dataset.count) == (300, 300, 3)
        assert dataset.crs.to_epsg() == 32631
        assert dataset.block_shapes[0] == (128, 128)
        pixels = dataset.read()
    assert pixels.dtype == np.uint8 and pixels.std() > 5  # texture, not a flat fill


def _geotiff(wall: float, forward: float, rss: float) -> dict:
    return {
        "wall_s": wall,
        "forward_s": forward,
        "tiles_run": 4,
        "tile": 100,
        "model_pixels": 4 * 100 * 100,
        "peak_rss_mb": rss,
    }


def test_memory_verdict_sums_streaming_and_forward_peaks() -> None:
    results = {"geotiff": _geotiff(10.0, 2.0, 900.0), "forward": {"peak_rss_mb": 1200.0}}
    verdict = bench.memory_verdict(results)
    assert verdict is not None
    assert verdict["sum_mb"] == 2100.0 and verdict["meets"]
    results["forward"]["peak_rss_mb"] = 1700.0
    assert not bench.memory_verdict(results)["meets"]  # type: ignore[index]
    assert bench.memory_verdict({"forward": {"peak_rss_mb": 1.0}}) is None


def test_projected_overhead_uses_measured_overhead_and_projected_forward() -> None:
    # 8 s outside the model; 4 tiles of 100² = 0.04 MP at 100 s/MP = 4 s of forward pass
    results = {"geotiff": _geotiff(10.0, 2.0, 1.0), "forward": {"seconds_per_megapixel": 100.0}}
    projected = bench.projected_overhead(results)
    assert projected == {"overhead_s": 8.0, "projected_forward_s": 4.0, "share": 0.6667}


def test_geotiff_case_in_a_child_process(tmp_path) -> None:
    """A 256² GeoTIFF through the real job with a 2-filter U-Net, in its own process."""
    result = bench.run_in_child(
        "geotiff",
        size=256,
        base_filters=2,
        tile=128,
        overlap=16,
        batch_size=2,
        block_size=0,
        workdir=str(tmp_path),
    )
    assert result["predicted"] == 1
    # --tile 128 is the budget: the U-Net (stride 16) gets 3x3 tiles of 96 at stride 80, which
    # end exactly at 256 (the fixed 128 ran 3x3 tiles of 128, 2.25 model px per scene px)
    assert result["planned_tile"] == 96 and result["tiles_run"] == 9
    assert result["model_pixels_per_scene_pixel"] == pytest.approx(
        model_pixels_per_scene_pixel(256, 256, 96, 16), abs=1e-4
    )
    assert result["model_pixels_per_scene_pixel"] == bench.planned_ratio(256, 128, 16, 16)
    assert result["device"].startswith("CPU")
    assert result["peak_rss_mb"] > 100  # an interpreter with TensorFlow, measured in the child
    assert 0.0 < result["overhead_share"] < 1.0
    assert 0.0 < result["forward_s"] < result["wall_s"]
    assert result["megapixels_per_s"] == pytest.approx(256 * 256 / 1e6 / result["wall_s"], abs=1e-6)
    results = {"cpu_count": 2, "geotiff": result}
    assert "NARROW model" in bench.format_report(results)


def test_write_geotiff_can_declare_a_share_of_its_rows_nodata(tmp_path) -> None:
    path = str(tmp_path / "sparse_sat.tif")
    bench.write_geotiff(path, 200, block=64, nodata_fraction=0.7)
    with rasterio.open(path) as dataset:
        pixels = dataset.read()
        assert dataset.nodata == 0
    assert (pixels[:, :140] == 0).all() and (pixels[:, 140:] > 0).all()


def test_planned_ratio_counts_the_tiles_each_block_runs() -> None:
    # whole 2448² scene: 4 x 4 tiles of 672 (origins 0, 608, 1216, 1824); blocks of 1224: each
    # block's grid covers it + 32 px past its inner border (1256) with 2 x 2 tiles of 672, so
    # the four blocks run 16 tiles, as the whole scene does (a shared global grid ran 6 x 6)
    assert bench.planned_ratio(2448, 768, 64, 16) == pytest.approx(16 * 672**2 / 2448**2, abs=1e-4)
    assert bench.planned_ratio(2448, 768, 64, 16, 1224) == pytest.approx(
        16 * 672**2 / 2448**2, abs=1e-4
    )
    # the target at the default budget: <= 1.2 block-parallel at 16384² for both strides
    assert bench.planned_ratio(16384, TILE_SIZE, 64, 16, 4096) <= 1.2
    assert bench.planned_ratio(16384, TILE_SIZE, 64, 32, 4096) <= 1.2
    assert bench.planned_ratio(2448, 612, 64, 16, fixed=True) == 1.5625
    report = bench.plan_report("unet", 768, 64, 2448, 4096, 2048)
    assert "2448² whole scene: fixed 768 → 1.5748 model px/scene px; planned 672 → 1.2057" in report


def test_tta_case_times_every_mode_relative_to_none() -> None:
    result = bench.tta_case(base_filters=2, tile=32, batch_size=2)
    assert set(result["seconds"]) == {"none", "flip", "d4"}
    assert all(value > 0 for value in result["seconds"].values())
    assert result["relative_to_none"]["none"] == 1.0
    # 4 and 8 forward passes against 1: more work, whatever the noise of a tiny model
    assert result["relative_to_none"]["d4"] > 1.0
    report = bench.format_report({"cpu_count": 2, "tta": result})
    assert "d4" in report and "flip" in report
