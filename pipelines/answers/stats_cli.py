"""``landcover stats``: class areas of existing predictions (:func:`.stats.run_stats`).

Parsing imports neither Beam nor rasterio, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.core.cli import add_map_gsd, print_summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover stats",
        allow_abbrev=False,
        description=(
            "Class areas of predicted masks: per scene and class, pixels and area on the ground "
            "in m² and ha, nodata left out, read by windows. A projected CRS gives areas from "
            "its transform (feet and other units converted), a geographic CRS each row's area "
            "on the ellipsoid, a map without a CRS areas from --gsd (DeepGlobe PNG masks: "
            "0.5 m unless --gsd says otherwise), else pixel counts only; each row says which. "
            "Writes {id}_stats.json per scene and stats.parquet + stats.csv."
        ),
    )
    parser.add_argument(
        "--pred", required=True, help="predictions folder (local or gs://), or one {id}_mask.tif"
    )
    parser.add_argument("--output", help="folder for the tables (default: <pred>/stats)")
    add_map_gsd(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.answers.stats import run_stats  # rasterio, pyproj, pyarrow: only to run

    return print_summary(
        "landcover stats", lambda: run_stats(args.pred, args.output, gsd_m=args.gsd)
    )


if __name__ == "__main__":
    sys.exit(main())
