"""``landcover vectorize``: class polygons of predicted masks (:func:`.vectorize.run_vectorize`).

Parsing imports neither Beam nor rasterio, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.core.cli import add_map_gsd, non_negative_float, print_summary

# Literal copy of vector_files.VECTOR_FORMATS (importing it would import pyarrow); a test keeps
# them equal.
VECTOR_FORMATS = ("gpkg", "parquet")


def add_vector_options(parser: argparse.ArgumentParser) -> None:
    """--min-area and --simplify, shared with ``landcover predict --vectors``."""
    parser.add_argument(
        "--min-area",
        type=non_negative_float,
        default=0.0,
        help="leave out polygons smaller than this many m² (default 0: keep all)",
    )
    parser.add_argument(
        "--simplify",
        type=non_negative_float,
        default=0.0,
        help="simplify outlines with this tolerance in pixels, topology kept per polygon "
        "(default 0: exact pixel edges)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover vectorize",
        allow_abbrev=False,
        description=(
            "Class polygons of predicted masks, with class id, name, pixels and area, in the "
            "raster's CRS: {id}_polygons.gpkg (GeoPackage, opens in QGIS) or "
            "{id}_polygons.parquet (GeoParquet). Read by strips whose seams are joined, so a "
            "region is one polygon however large the map; memory stays bounded."
        ),
    )
    parser.add_argument("--pred", required=True, help="predictions folder, or one {id}_mask.tif")
    parser.add_argument("--output", help="folder for the polygons (default: beside the masks)")
    parser.add_argument("--format", choices=VECTOR_FORMATS, default="gpkg", help="default gpkg")
    add_vector_options(parser)
    add_map_gsd(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.answers.vectorize import run_vectorize  # rasterio, shapely: only to run

    return print_summary(
        "landcover vectorize",
        lambda: run_vectorize(
            args.pred,
            args.output,
            fmt=args.format,
            min_area_m2=args.min_area,
            simplify_px=args.simplify,
            gsd_m=args.gsd,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
