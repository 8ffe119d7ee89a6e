"""``landcover bench vectorize``: how to polygonise a 16384² class map, chosen by measurement.

Builds one class map of ``--size``² (a mosaic of real DeepGlobe label masks from ``--masks``,
each tile rotated or flipped by its position, 0.5 m pixels in UTM; or synthetic class maps when
no masks are found), optionally relabels a ``--noise`` fraction of pixels at random (the salt
and pepper of a weak model: many tiny polygons), and polygonises it into a GeoPackage with each
method in a fresh process, reporting wall seconds, peak RSS and the polygon count:

- ``strips-N``: :func:`pipelines.answers.vectorize.vectorize_class_map`, strips of N rows
  (GDAL's polygoniser per strip via ``rasterio.features.shapes``, seams joined with shapely);
- ``whole``: the whole map read into memory and polygonised in one ``rasterio.features.shapes``
  call (no seams by construction), the same shapely conversion and writer.

Both give the same polygons (the answers tests hold strips equal to the whole map); the
question is memory and time. Run: ``landcover bench vectorize --size 16384``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SIZE = 16384
DEFAULT_METHODS = ("strips-512", "strips-1024", "strips-2048", "whole")
GSD_M = 0.5
UTM33 = "EPSG:32633"


def default_masks() -> Path:
    """The real DeepGlobe sample beside the repository (``<repo>/../shared/deepglobe-sample``)."""
    return Path(__file__).resolve().parents[3] / "shared" / "deepglobe-sample"


def _tiles(masks: Path | None, tile: int) -> list[np.ndarray]:
    """Class-id tiles: the DeepGlobe masks under ``masks``, else synthetic class maps."""
    from pipelines.core.palette import decode_mask

    if masks is not None and masks.is_dir():
        from PIL import Image

        files = sorted(masks.glob("*_mask.png"))
        if files:
            return [
                decode_mask(np.asarray(Image.open(f).convert("RGB")))[:tile, :tile] for f in files
            ]
    from pipelines.synth import synthesize_scene

    return [synthesize_scene(seed, size=tile)[1] for seed in range(4)]


def build_map(path: str, size: int, masks: Path | None, noise: float, seed: int = 0) -> int:
    """Write the benchmark's class map (a tiled GeoTIFF), strip by strip; returns its tile size."""
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    tiles = _tiles(masks, 2448)
    tile = min(t.shape[0] for t in tiles)
    rng = np.random.default_rng(seed)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": UTM33,
        "transform": Affine(GSD_M, 0, 500000.0, 0, -GSD_M, 4000000.0),
        "nodata": 255,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "DEFLATE",
        "BIGTIFF": "IF_SAFER",
    }
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, tile):
            height = min(tile, size - row)
            band = np.empty((height, size), np.uint8)
            for col in range(0, size, tile):
                n = (row // tile) * 7 + col // tile
                piece = np.rot90(tiles[n % len(tiles)][:tile, :tile], k=n % 4)
                if (n // 4) % 2:
                    piece = piece[:, ::-1]
                width = min(tile, size - col)
                band[:, col : col + width] = piece[:height, :width]
            if noise > 0:
                flip = rng.random(band.shape) < noise
                band[flip] = rng.integers(0, 7, int(flip.sum()), dtype=np.uint8)
            dst.write(band[np.newaxis], window=Window(0, row, size, height))
    return tile


def _whole(map_path: str, out: str) -> int:
    """The whole map in memory, one ``shapes`` call, the same conversion and writer."""
    import rasterio
    import rasterio.features
    import shapely
    from shapely.geometry import shape

    from pipelines.answers.vector_files import FeatureBatch, open_writer
    from pipelines.answers.vectorize import to_crs

    with rasterio.open(map_path) as ds:
        ids = ds.read(1)
        crs, transform = ds.crs.to_wkt(), tuple(ds.transform[:6])
    found = rasterio.features.shapes(ids, mask=ids != 255, connectivity=4)
    pairs = [(shape(geometry), int(value)) for geometry, value in found]
    del ids
    polygons = shapely.simplify(np.array([p for p, _ in pairs], dtype=object), 0.0)
    classes = np.array([c for _, c in pairs], dtype=np.int16)
    pixels = np.rint(shapely.area(polygons)).astype(np.int64)
    wkb = shapely.to_wkb(to_crs(polygons, transform))  # type: ignore[arg-type]
    writer = open_writer("gpkg", out, crs)
    writer.write(FeatureBatch.of(wkb, classes, pixels, pixels * GSD_M**2))
    writer.close()
    return len(pairs)


def worker(method: str, map_path: str, out: str) -> dict[str, Any]:
    """One method in this (fresh) process: seconds and polygons."""
    started = time.perf_counter()
    if method == "whole":
        polygons = _whole(map_path, out)
    elif method.startswith("strips-"):
        from pipelines.answers.vectorize import vectorize_class_map

        summary = vectorize_class_map(map_path, out, strip_rows=int(method.split("-", 1)[1]))
        polygons = int(summary.polygons.sum())
    else:
        raise ValueError(f"unknown method {method!r}")
    return {
        "method": method,
        "seconds": round(time.perf_counter() - started, 2),
        "polygons": polygons,
        # The whole process's peak (Linux reports KiB): the interpreter and imports included.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(method: str, map_path: str, workdir: str) -> dict[str, Any]:
    """Run ``method`` in a fresh child process (its own peak RSS); its result."""
    out = os.path.join(workdir, f"{method}.gpkg")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.bench.vectorize",
            "--worker",
            method,
            "--map",
            map_path,
            "--out",
            out,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"method": method, "error": done.stderr.strip().splitlines()[-1:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["output_mb"] = round(os.path.getsize(out) / 2**20, 1)
    return result


def run_bench(
    size: int, methods: Sequence[str], masks: Path | None, noise: float, workdir: str
) -> dict[str, Any]:
    map_path = os.path.join(workdir, "map.tif")
    started = time.perf_counter()
    tile = build_map(map_path, size, masks, noise)
    built = round(time.perf_counter() - started, 1)
    results = [measure(m, map_path, workdir) for m in methods]
    return {"size": size, "tile": tile, "noise": noise, "map_build_s": built, "results": results}


def format_results(report: dict[str, Any]) -> str:
    rows = [r for r in report["results"] if "error" not in r]
    base = next((r for r in rows if r["method"] == "whole"), rows[0] if rows else None)
    lines = [
        f"{report['size']}² class map ({report['tile']}² tiles, noise {report['noise']}):",
        f"{'method':<14}{'seconds':>9}{'peak RSS MB':>13}{'polygons':>10}{'time/whole':>12}"
        f"{'RSS/whole':>11}",
    ]
    for r in report["results"]:
        if "error" in r:
            lines.append(f"{r['method']:<14} failed: {r['error']}")
            continue
        assert base is not None
        time_ratio = r["seconds"] / base["seconds"]
        rss_ratio = r["peak_rss_mb"] / base["peak_rss_mb"]
        lines.append(
            f"{r['method']:<14}{r['seconds']:>9.1f}{r['peak_rss_mb']:>13.0f}{r['polygons']:>10}"
            f"{time_ratio:>12.2f}{rss_ratio:>11.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="landcover bench vectorize",
        description="Polygonising a large class map: strips with seam joining vs the whole "
        "map at once (seconds, peak RSS, polygons), each in a fresh process.",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="map side (default 16384)")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--masks", type=Path, default=None, help="folder of DeepGlobe *_mask.png")
    parser.add_argument("--noise", type=float, default=0.0, help="fraction of pixels relabelled")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--map", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.worker:
        print(json.dumps(worker(args.worker, args.map, args.out)))
        return 0
    masks = args.masks or default_masks()
    with tempfile.TemporaryDirectory(prefix="landcover-bench-vec-", dir=args.workdir) as tmp:
        report = run_bench(args.size, args.methods, masks, args.noise, tmp)
    print(format_results(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
