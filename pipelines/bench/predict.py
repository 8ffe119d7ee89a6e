"""``landcover bench predict``: throughput, memory and overhead of batch inference, per case.

Each case runs the real job (``run_predict``: Beam, windowed reads, streaming stitch, PNG or COG
writes) in its own fresh (spawned) child process, so the peak RSS a case reports is that case's
alone (``ru_maxrss`` of the child) and not the parent's or an earlier case's:

- ``jpeg``: a synthetic 2448² DeepGlobe-style JPEG scene → PNG mask.
- ``geotiff``: a large tiled, georeferenced GeoTIFF generated on the fly (``--geotiff-size``,
  default 16384²) → block-parallel COG. At the default width this scene would take hours of
  CPU, so it runs with a NARROW model (``--narrow-filters``): it measures the streaming,
  stitching, I/O and COG memory and overhead over the whole scene, not the model.
- ``nodata``: the ``geotiff`` case at ``--nodata-size`` (default 4096²) twice, whole and with
  70% of its rows nodata: the time a mostly empty scene costs against a full one (all-nodata
  tiles skip the model, their bands the argmax, their blocks the writes).
- ``forward``: the forward pass alone at the default width on one batch of default-size tiles:
  its peak RSS and its seconds per model pixel (the latter projects the default-width time of
  the ``geotiff`` case: overhead seconds measured, forward seconds projected).
- ``tta``: the same batch with ``--tta none|flip|d4``, timed in one process (cost ratios).

Memory verdict: ``geotiff`` peak (streaming + I/O, narrow model) + ``forward`` peak (the model at
the default width) against the ≤ 2.5 GB target; both include an interpreter with TensorFlow, so
the sum counts that base twice (conservative).

``--sweep 612/64,1024/64,1280/64`` runs the ``jpeg`` case once per tile/overlap candidate: time
per scene, peak RSS and model pixels per scene pixel, the evidence for the default tile.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from models.registry import ARCHITECTURES, spec
from pipelines.core.tiling import (
    TILE_BATCH_SIZE,
    TILE_OVERLAP,
    TILE_SIZE,
    TTA_MODES,
    plan_region_tile,
)
from pipelines.predict.options import DEFAULT_BLOCK_SIZE, PredictOptions

SCENE_SIZE = 2448
GEOTIFF_SIZE = 16384
NARROW_FILTERS = 4
MEMORY_TARGET_MB = 2.5 * 1024
OVERHEAD_TARGET = 0.10
CASES = ("jpeg", "geotiff", "nodata", "forward", "tta")
NODATA_SIZE = 4096
NODATA_FRACTION = 0.7


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(fn_name: str, kwargs: dict[str, Any], queue: Any) -> None:
    try:
        from pipelines.bench.device import device_name

        result = CASE_FUNCTIONS[fn_name](**kwargs)
        result["peak_rss_mb"] = round(peak_rss_mb(), 1)
        result["device"] = device_name()
        queue.put(("ok", result))
    except BaseException as error:  # reported to the parent, which raises it
        queue.put(("error", f"{type(error).__name__}: {error}"))


def run_in_child(fn_name: str, **kwargs: Any) -> dict[str, Any]:
    """Run case ``fn_name`` in a fresh spawned interpreter; its result + ``peak_rss_mb``."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(fn_name, kwargs, queue))
    process.start()
    status, payload = queue.get()
    process.join()
    if status != "ok":
        raise RuntimeError(f"benchmark case {fn_name} failed: {payload}")
    return dict(payload)


def _save_model(path: str, arch: str, base_filters: int) -> int:
    from models.architectures import build_model

    model = build_model(arch, base_filters=base_filters)
    model.save(path)
    return int(model.count_params())


def _throughput(summary: dict[str, Any], pixels: int, tile: int, overlap: int) -> dict[str, Any]:
    """Figures of a ``run_predict`` summary over ``pixels`` scene pixels (one scene)."""
    timings = summary["timings"]
    wall, forward = timings["wall_s"], timings["forward_s"]
    model_pixels = summary["model_pixels"]
    tiles = summary["tiles_run"]
    return {
        "wall_s": wall,
        "forward_s": forward,
        "model_load_s": timings["model_load_s"],
        "tiles_run": tiles,
        "model_pixels": model_pixels,
        "planned_tile": round((model_pixels / tiles) ** 0.5) if tiles else None,
        "seconds_per_megapixel": round(wall / (pixels / 1e6), 4) if pixels else None,
        "scenes_per_minute": round(60.0 / wall, 4) if wall else None,
        "megapixels_per_s": round(pixels / 1e6 / wall, 6) if wall else None,
        "model_pixels_per_scene_pixel": round(model_pixels / pixels, 4),
        "overhead_share": round((wall - forward) / wall, 4) if wall else None,
        "tile": tile,
        "overlap": overlap,
    }


def jpeg_case(
    *,
    size: int = SCENE_SIZE,
    arch: str = "unet",
    base_filters: int = 64,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = TILE_BATCH_SIZE,
    workdir: str | None = None,
) -> dict[str, Any]:
    """One synthetic DeepGlobe-style JPEG scene through the job (PNG output)."""
    from pipelines import synth
    from pipelines.predict.job import run_predict

    with tempfile.TemporaryDirectory(prefix="landcover-bench-", dir=workdir) as tmp:
        inputs, outputs = os.path.join(tmp, "scenes"), os.path.join(tmp, "predictions")
        synth.write_scenes(inputs, 1, size=size, seed=0, labeled=False)
        model_file = os.path.join(tmp, "model.keras")
        params = _save_model(model_file, arch, base_filters)
        options = PredictOptions(tile=tile, overlap=overlap, batch_size=batch_size)
        summary = run_predict(model_file, inputs, outputs, options)
    result = _throughput(summary, size * size, tile, overlap)
    result.update(case="jpeg", size=size, arch=arch, base_filters=base_filters, params=params)
    result.update(batch_size=batch_size, predicted=summary["predicted"])
    return result


def write_geotiff(path: str, size: int, block: int = 512, nodata_fraction: float = 0.0) -> None:
    """A tiled RGB GeoTIFF of ``size``² (UTM 31N, 0.5 m) written by row bands, never whole.

    The pixels repeat one synthetic 1024² scene: realistic texture for the codecs at the cost of
    one small synthesis. ``nodata_fraction`` > 0: nodata 0 is declared and that share of the
    rows (the top ones, as a swath's edge or an AOI's outside would be) is nodata.
    """
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from pipelines import synth

    texture, _ = synth.synthesize_scene(seed=0, size=1024)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 3,
        "dtype": "uint8",
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "DEFLATE",
        "crs": "EPSG:32631",
        "transform": from_origin(500000.0, 5000000.0, 0.5, 0.5),
        "BIGTIFF": "IF_SAFER",
    }
    if nodata_fraction > 0:
        profile["nodata"] = 0
        texture = np.maximum(texture, 1)  # no valid pixel equals the nodata value
    empty_rows = round(size * nodata_fraction)
    reps = -(-size // texture.shape[1])
    with rasterio.open(path, "w", **profile) as dataset:
        for row in range(0, size, block):
            rows = min(block, size - row)
            lines = np.arange(row, row + rows) % texture.shape[0]
            band = np.tile(texture[lines], (1, reps, 1))[:, :size]
            band[: max(0, min(rows, empty_rows - row))] = 0
            dataset.write(band.transpose(2, 0, 1), window=Window(0, row, size, rows))


def geotiff_case(
    *,
    size: int = GEOTIFF_SIZE,
    arch: str = "unet",
    base_filters: int = NARROW_FILTERS,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = TILE_BATCH_SIZE,
    block_size: int | None = None,
    workdir: str | None = None,
    nodata_fraction: float = 0.0,
) -> dict[str, Any]:
    """A large tiled GeoTIFF generated here → COG through the block-parallel job."""
    from pipelines.predict.job import run_predict

    block = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    with tempfile.TemporaryDirectory(prefix="landcover-bench-", dir=workdir) as tmp:
        inputs, outputs = os.path.join(tmp, "scenes"), os.path.join(tmp, "predictions")
        os.makedirs(inputs)
        started = time.perf_counter()
        write_geotiff(os.path.join(inputs, "big_sat.tif"), size, nodata_fraction=nodata_fraction)
        generate_s = time.perf_counter() - started
        model_file = os.path.join(tmp, "model.keras")
        params = _save_model(model_file, arch, base_filters)
        options = PredictOptions(
            tile=tile, overlap=overlap, batch_size=batch_size, block_size=block
        )
        summary = run_predict(model_file, inputs, outputs, options)
        mask = os.path.join(outputs, "big_mask.tif")
        mask_mb = os.path.getsize(mask) / 2**20 if os.path.exists(mask) else 0.0
        if not os.path.exists(mask):
            raise RuntimeError(f"no COG at {mask}: {sorted(os.listdir(outputs))}")
    result = _throughput(summary, size * size, tile, overlap)
    result.update(case="geotiff", size=size, arch=arch, base_filters=base_filters, params=params)
    result.update(batch_size=batch_size, block_size=block, blocks=summary["blocks"])
    result.update(predicted=summary["predicted"], generate_s=round(generate_s, 2))
    result.update(mask_mb=round(mask_mb, 1), nodata_fraction=nodata_fraction)
    result.update(tiles_skipped_nodata=summary["tiles_skipped_nodata"])
    return result


def _timed_forward(model: Any, tiles: np.ndarray, tta: str) -> float:
    from models.serving import predict_tiles

    started = time.perf_counter()
    predict_tiles(model, tiles, tta=tta)
    return time.perf_counter() - started


def _random_tiles(batch_size: int, tile: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (batch_size, tile, tile, 3), dtype=np.uint8)


def forward_case(
    *,
    arch: str = "unet",
    base_filters: int = 64,
    tile: int = TILE_SIZE,
    batch_size: int = TILE_BATCH_SIZE,
) -> dict[str, Any]:
    """One batch through the model: peak RSS of the forward pass and seconds per model pixel.

    Not warmed up (one batch at the default width is minutes of CPU): the first call's tracing
    is inside the time, so seconds per model pixel is an upper bound.
    """
    from models.architectures import build_model

    model = build_model(arch, base_filters=base_filters)
    tiles = _random_tiles(batch_size, tile)
    before_mb = peak_rss_mb()
    seconds = _timed_forward(model, tiles, "none")
    return {
        "case": "forward",
        "arch": arch,
        "base_filters": base_filters,
        "tile": tile,
        "batch_size": batch_size,
        "params": int(model.count_params()),
        "seconds": round(seconds, 3),
        "seconds_per_megapixel": round(seconds / (batch_size * tile * tile / 1e6), 4),
        "rss_before_forward_mb": round(before_mb, 1),
    }


def tta_case(
    *,
    arch: str = "unet",
    base_filters: int = 64,
    tile: int = TILE_SIZE,
    batch_size: int = TILE_BATCH_SIZE,
    modes: Sequence[str] = TTA_MODES,
) -> dict[str, Any]:
    """Seconds of one batch under each TTA mode, after one untimed warm-up batch."""
    from models.architectures import build_model

    model = build_model(arch, base_filters=base_filters)
    tiles = _random_tiles(batch_size, tile)
    _timed_forward(model, tiles, "none")  # tracing (per batch shape) outside the timings
    seconds = {mode: round(_timed_forward(model, tiles, mode), 3) for mode in modes}
    base = seconds.get("none") or 0.0
    relative = {mode: round(value / base, 3) if base else None for mode, value in seconds.items()}
    return {
        "case": "tta",
        "arch": arch,
        "base_filters": base_filters,
        "tile": tile,
        "batch_size": batch_size,
        "seconds": seconds,
        "relative_to_none": relative,
    }


CASE_FUNCTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "jpeg": jpeg_case,
    "geotiff": geotiff_case,
    "forward": forward_case,
    "tta": tta_case,
}


def parse_candidates(text: str) -> list[tuple[int, int]]:
    """``"612/64,1024/64"`` → ``[(612, 64), (1024, 64)]``; ValueError naming a bad item."""
    candidates = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        tile, sep, overlap = item.partition("/")
        if not sep or not tile.isdigit() or not overlap.isdigit():
            raise ValueError(f"tile candidate {item!r} is not TILE/OVERLAP (e.g. 1024/64)")
        candidates.append((int(tile), int(overlap)))
    if not candidates:
        raise ValueError("no tile candidates given")
    return candidates


def _regions(size: int, block: int) -> list[Any]:
    """The blocks a ``size``² scene is predicted in (``[None]``: whole), as predict splits it."""
    from pipelines.core.geo import block_grid

    return list(block_grid(size, size, block)) if 0 < block < size else [None]


def planned_ratio(
    size: int, budget: int, overlap: int, stride: int, block: int = 0, *, fixed: bool = False
) -> float:
    """Model px per scene px of a ``size``² scene as predict plans it, counted without a model:
    for the scene, or each block (its own grid, ``tiling.plan_region_tile``), the planned tile
    (``fixed``: the budget itself, as before planning) times the tiles its stitcher asks for,
    summed over the blocks."""
    from pipelines.core.stitching import StreamingStitcher

    pixels = 0
    for region in _regions(size, block):
        tile = budget if fixed else plan_region_tile(size, size, region, budget, overlap, stride)
        pixels += StreamingStitcher(size, size, tile, overlap, 1, region).tile_count * tile * tile
    return round(pixels / (size * size), 4)


def plan_report(
    arch: str, budget: int, overlap: int, size: int, geotiff_size: int, block_size: int
) -> str:
    """What ``--plan-only`` prints: per scene size, the fixed tile of the budget's side against
    the planned tile, whole-scene and block-parallel (each block's own), counted by the
    stitcher (no model run)."""
    stride = spec(arch).stride
    lines = [f"planned tiles for {arch} (stride {stride}), --tile {budget}, --overlap {overlap}"]
    cases = [(size, 0), (geotiff_size, 0), (geotiff_size, block_size)]
    for side, block in cases:
        regions = _regions(side, block)
        sides = sorted({plan_region_tile(side, side, r, budget, overlap, stride) for r in regions})
        planned = "/".join(str(t) for t in sides)
        where = f"blocks of {block}" if 0 < block < side else "whole scene"
        fixed = planned_ratio(side, budget, overlap, 1, block, fixed=True)
        lines.append(
            f"  {side}² {where}: fixed {budget} → {fixed} model px/scene px; planned {planned} → "
            f"{planned_ratio(side, budget, overlap, stride, block)}"
        )
    return "\n".join(lines)


def memory_verdict(results: dict[str, Any]) -> dict[str, Any] | None:
    """Streaming peak (geotiff case) + forward peak (default width) against the target."""
    if "geotiff" not in results or "forward" not in results:
        return None
    streaming = results["geotiff"]["peak_rss_mb"]
    forward = results["forward"]["peak_rss_mb"]
    total = streaming + forward
    return {
        "streaming_mb": streaming,
        "forward_mb": forward,
        "sum_mb": round(total, 1),
        "target_mb": MEMORY_TARGET_MB,
        "meets": total <= MEMORY_TARGET_MB,
    }


def projected_overhead(results: dict[str, Any]) -> dict[str, Any] | None:
    """The geotiff case's overhead share with its forward time projected to the default width.

    Overhead seconds are measured (narrow model); forward seconds = model pixels × the forward
    case's seconds per model pixel at the default width.
    """
    if "geotiff" not in results or "forward" not in results:
        return None
    big, forward = results["geotiff"], results["forward"]
    overhead = big["wall_s"] - big["forward_s"]
    model_mp = big["model_pixels"] / 1e6
    projected_forward = model_mp * forward["seconds_per_megapixel"]
    total = overhead + projected_forward
    return {
        "overhead_s": round(overhead, 2),
        "projected_forward_s": round(projected_forward, 1),
        "share": round(overhead / total, 4) if total else None,
    }


def run_bench(
    cases: Sequence[str] = CASES,
    *,
    arch: str = "unet",
    base_filters: int = 64,
    narrow_filters: int = NARROW_FILTERS,
    tile: int = TILE_SIZE,
    overlap: int = TILE_OVERLAP,
    batch_size: int = TILE_BATCH_SIZE,
    size: int = SCENE_SIZE,
    geotiff_size: int = GEOTIFF_SIZE,
    nodata_size: int = NODATA_SIZE,
    block_size: int | None = None,
    sweep: Sequence[tuple[int, int]] = (),
    workdir: str | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the chosen cases (each in its own child process); returns every figure printed.

    ``on_result(results so far)`` is called after each case, so a long run that is stopped
    still leaves the figures of the cases it finished.
    """
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise ValueError(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    common = {"arch": arch, "tile": tile, "batch_size": batch_size}
    block = DEFAULT_BLOCK_SIZE if block_size is None else block_size
    results: dict[str, Any] = {"cpu_count": os.cpu_count()}
    for case in cases:
        if case == "jpeg":
            kwargs = {**common, "base_filters": base_filters, "size": size, "overlap": overlap}
            results[case] = run_in_child(case, **kwargs, workdir=workdir)
        elif case == "nodata":
            kwargs = {**common, "base_filters": narrow_filters, "overlap": overlap}
            kwargs.update(size=nodata_size, block_size=block_size, workdir=workdir)
            full = run_in_child("geotiff", **kwargs)
            sparse = run_in_child("geotiff", **kwargs, nodata_fraction=NODATA_FRACTION)
            results[case] = {
                "case": "nodata",
                "size": nodata_size,
                "full": full,
                "sparse": sparse,
                "time_ratio": round(sparse["wall_s"] / full["wall_s"], 3),
            }
        elif case == "geotiff":
            kwargs = {**common, "base_filters": narrow_filters, "overlap": overlap}
            kwargs.update(size=geotiff_size, block_size=block_size, workdir=workdir)
            results[case] = run_in_child(case, **kwargs)
        else:
            results[case] = run_in_child(case, **common, base_filters=base_filters)
        expected = {"jpeg": (size, 0), "geotiff": (geotiff_size, block)}.get(case)
        if expected is not None:
            results[case]["expected_model_pixels_per_scene_pixel"] = planned_ratio(
                expected[0], tile, overlap, spec(arch).stride, expected[1]
            )
        if on_result is not None:
            on_result(results)
    results["sweep"] = []
    for t, o in sweep:
        kwargs = {**common, "tile": t, "overlap": o, "base_filters": base_filters, "size": size}
        results["sweep"].append(run_in_child("jpeg", **kwargs, workdir=workdir))
        if on_result is not None:
            on_result(results)
    results["memory"] = memory_verdict(results)
    results["projected_overhead"] = projected_overhead(results)
    return results


def _case_line(name: str, r: dict[str, Any]) -> str:
    return (
        f"{name:<8} {r['size']}² {r['arch']} base {r['base_filters']} on {r.get('device', '?')}, "
        f"tile ≤{r['tile']}/{r['overlap']} (planned {r.get('planned_tile')}), batch "
        f"{r['batch_size']}: {r['scenes_per_minute']} scenes/min, {r['megapixels_per_s']} MP/s, "
        f"{r.get('seconds_per_megapixel')} s/MP, model px/scene px "
        f"{r['model_pixels_per_scene_pixel']} (planned "
        f"{r.get('expected_model_pixels_per_scene_pixel', '-')}), "
        f"peak RSS {r['peak_rss_mb']:.0f} MB, outside forward {r['overhead_share']:.1%} "
        f"(wall {r['wall_s']:.1f} s, forward {r['forward_s']:.1f} s)"
    )


def format_report(results: dict[str, Any]) -> str:
    lines = [f"landcover bench predict on {results['cpu_count']} CPUs"]
    if "jpeg" in results:
        r = results["jpeg"]
        verdict = "meets" if r["overhead_share"] < OVERHEAD_TARGET else "misses"
        lines.append(_case_line("jpeg", r) + f" [{verdict} the < 10% target at this width]")
    if "geotiff" in results:
        r = results["geotiff"]
        lines.append(
            _case_line("geotiff", r)
            + f"; NARROW model, {r['blocks']} blocks of {r['block_size']}, COG {r['mask_mb']} MB"
        )
    if "nodata" in results:
        r = results["nodata"]
        full, sparse = r["full"], r["sparse"]
        lines.append(
            f"nodata   {r['size']}² GeoTIFF, NARROW model, {sparse['nodata_fraction']:.0%} nodata:"
            f" {sparse['wall_s']:.1f} s ({sparse['tiles_run']} tiles run, "
            f"{sparse['tiles_skipped_nodata']} skipped, COG {sparse['mask_mb']} MB) vs full scene "
            f"{full['wall_s']:.1f} s ({full['tiles_run']} tiles, COG {full['mask_mb']} MB): "
            f"×{r['time_ratio']} the time"
        )
    if "forward" in results:
        r = results["forward"]
        lines.append(
            f"forward  {r['arch']} base {r['base_filters']} on {r.get('device', '?')}, "
            f"{r['batch_size']} tiles of "
            f"{r['tile']}²: {r['seconds']:.1f} s ({r['seconds_per_megapixel']} s/MP), peak RSS "
            f"{r['peak_rss_mb']:.0f} MB ({r['rss_before_forward_mb']:.0f} MB before the pass)"
        )
    if results.get("projected_overhead"):
        p = results["projected_overhead"]
        lines.append(
            f"geotiff at the default width (projected): overhead {p['overhead_s']} s measured + "
            f"forward {p['projected_forward_s']} s → outside forward {p['share']:.1%}"
        )
    if "tta" in results:
        r = results["tta"]
        costs = ", ".join(
            f"{mode} {r['seconds'][mode]:.2f} s (×{r['relative_to_none'][mode]})"
            for mode in r["seconds"]
        )
        lines.append(
            f"tta      base {r['base_filters']}, {r['batch_size']} tiles of {r['tile']}²: {costs}"
        )
    if results.get("memory"):
        m = results["memory"]
        lines.append(
            f"memory   streaming {m['streaming_mb']:.0f} MB + forward {m['forward_mb']:.0f} MB = "
            f"{m['sum_mb']:.0f} MB vs target {m['target_mb']:.0f} MB: "
            + ("meets" if m["meets"] else "MISSES")
        )
    for r in results.get("sweep", []):
        lines.append(_case_line("sweep", r) + f", {60.0 / r['scenes_per_minute']:.1f} s/scene")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover bench predict",
        description="Inference throughput, peak RSS and overhead share: a 2448² JPEG and a large "
        "generated GeoTIFF (narrow model), the forward pass and TTA at the default width.",
    )
    parser.add_argument(
        "--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)} (default all)"
    )
    parser.add_argument("--arch", default="unet", choices=ARCHITECTURES, help="default unet")
    parser.add_argument("--base-filters", type=int, default=64, help="model width (default 64)")
    parser.add_argument(
        "--narrow-filters",
        type=int,
        default=NARROW_FILTERS,
        help=f"model width of the geotiff case (default {NARROW_FILTERS})",
    )
    parser.add_argument("--tile", type=int, default=TILE_SIZE, help="predict's --tile")
    parser.add_argument("--overlap", type=int, default=TILE_OVERLAP, help="predict's --overlap")
    parser.add_argument(
        "--batch-size", type=int, default=TILE_BATCH_SIZE, help="predict's --batch-size"
    )
    parser.add_argument("--size", type=int, default=SCENE_SIZE, help="JPEG side (default 2448)")
    parser.add_argument(
        "--geotiff-size", type=int, default=GEOTIFF_SIZE, help="GeoTIFF side (default 16384)"
    )
    parser.add_argument(
        "--nodata-size",
        type=int,
        default=NODATA_SIZE,
        help=f"side of the nodata case's GeoTIFFs (default {NODATA_SIZE})",
    )
    parser.add_argument(
        "--block-size", type=int, default=DEFAULT_BLOCK_SIZE, help="predict's --block-size"
    )
    parser.add_argument(
        "--sweep", help="tile/overlap candidates run as jpeg cases, e.g. 612/64,1024/64,1280/64"
    )
    parser.add_argument(
        "--plan-only",
        action="store_true",
        help="print each case's planned tile and model px per scene px (counted, no model run)",
    )
    parser.add_argument("--workdir", help="where temporary scenes and outputs go")
    parser.add_argument("--json", help="also write every figure to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    try:
        sweep = parse_candidates(args.sweep) if args.sweep else []
        if set(cases) - set(CASES):
            raise ValueError(f"--cases: choose from {', '.join(CASES)}")
    except ValueError as error:
        parser.error(str(error))
    if args.plan_only:
        print(
            plan_report(
                args.arch, args.tile, args.overlap, args.size, args.geotiff_size, args.block_size
            )
        )
        return 0
    results = run_bench(
        cases,
        arch=args.arch,
        base_filters=args.base_filters,
        narrow_filters=args.narrow_filters,
        tile=args.tile,
        overlap=args.overlap,
        batch_size=args.batch_size,
        size=args.size,
        geotiff_size=args.geotiff_size,
        nodata_size=args.nodata_size,
        block_size=args.block_size,
        sweep=sweep,
        workdir=args.workdir,
        on_result=lambda partial: _save(partial, args.json),
    )
    print(format_report(results))
    _save(results, args.json)
    return 0


def _save(results: dict[str, Any], path: str | None) -> None:
    """Write the figures so far to ``path`` (when given) and log the last case's line."""
    if path:
        with open(path, "w") as handle:
            json.dump(results, handle, indent=2)
    print(format_report(results).splitlines()[-1], flush=True)


if __name__ == "__main__":
    sys.exit(main())
