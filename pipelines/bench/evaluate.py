"""``landcover bench evaluate``: peak memory and time of scoring one large COG/GeoTIFF pair.

Writes a ``--size``² prediction exactly as predict writes it (a class-map COG: uint8 ids,
colour table, nodata 255) and a GeoTIFF label raster of class ids on the same grid, both by
strips (the bench never holds a whole map), then scores the pair with
:func:`pipelines.evaluate.job.score_pair` in a fresh child process and reports its wall seconds
and peak RSS (the child's ``ru_maxrss``: Python, NumPy and GDAL's block cache together). The
promise it checks: a 16384² pair stays under 1.5 GB. Run: ``landcover bench evaluate``.
"""

from __future__ import annotations

import argparse
import json
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
_WRITE_ROWS = 1024


def _class_strip(row: int, rows: int, width: int, seed: int) -> np.ndarray:
    """Blocky class ids (64-px squares) for rows ``row``…: cheap to make, realistic to encode."""
    ys = (np.arange(row, row + rows) // 64)[:, None]
    xs = (np.arange(width) // 64)[None, :]
    return ((ys * 7 + xs * 13 + seed) % 6).astype(np.uint8)


def build_pair(folder: str, size: int) -> tuple[str, str]:
    """A prediction COG and a label GeoTIFF of ``size``², written by strips."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from pipelines.core.geo import PixelWindow
    from pipelines.io.raster_read import RasterInfo
    from pipelines.io.raster_write import ClassMapWriter

    crs, transform = CRS.from_epsg(32633).to_wkt(), from_origin(500_000, 4_000_000, 0.5, 0.5)
    pred, truth = f"{folder}/p_mask.tif", f"{folder}/t_mask.tif"
    info = RasterInfo(
        "bench.tif", "GTiff", size, size, 3, "uint8", crs, tuple(transform[:6]),  # type: ignore[arg-type]
        None, False, (512, 512),
    )  # fmt: skip
    writer = ClassMapWriter(pred, info)
    with writer:
        for row in range(0, size, _WRITE_ROWS):
            rows = min(_WRITE_ROWS, size - row)
            writer.write_window(PixelWindow(row, 0, rows, size), _class_strip(row, rows, size, 0))
    profile = {
        "driver": "GTiff", "height": size, "width": size, "count": 1, "dtype": "uint8",
        "crs": crs, "transform": transform, "tiled": True, "blockxsize": 512, "blockysize": 512,
        "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    with rasterio.open(truth, "w", **profile) as dst:
        for row in range(0, size, _WRITE_ROWS):
            rows = min(_WRITE_ROWS, size - row)
            dst.write(_class_strip(row, rows, size, 1), 1, window=Window(0, row, size, rows))
    return pred, truth


def worker(pred: str, truth: str) -> dict[str, Any]:
    """Score the pair here; seconds, peak RSS and the scored pixel count."""
    from pipelines.evaluate.job import score_pair

    started = time.perf_counter()
    cm, _ = score_pair(pred, truth)
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(peak_kb / 1024),
        "pixels": int(cm.sum()),
    }


def run_bench(size: int, workdir: str) -> dict[str, Any]:
    started = time.perf_counter()
    pred, truth = build_pair(workdir, size)
    built = round(time.perf_counter() - started, 1)
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.bench.evaluate", "--worker", pred, truth],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"size": size, "build_s": built, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="landcover bench evaluate",
        description="Peak RSS and seconds of scoring one large COG prediction against a "
        "GeoTIFF label raster (read by strips), in a fresh process.",
    )
    parser.add_argument("--size", type=int, default=DEFAULT_SIZE, help="side (default 16384)")
    parser.add_argument("--workdir", help="scratch folder (default: a temporary one)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    with tempfile.TemporaryDirectory(prefix="landcover-bench-eval-", dir=args.workdir) as tmp:
        report = run_bench(args.size, tmp)
    print(
        f"{report['size']}² pair: scored {report['pixels']:,} pixels in {report['seconds']} s, "
        f"peak RSS {report['peak_rss_mb']} MB (pair written in {report['build_s']} s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
