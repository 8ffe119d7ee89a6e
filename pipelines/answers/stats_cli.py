"""``landcover stats``: class areas of existing predictions (:func:`.stats.run_stats`).

Parsing imports neither Beam nor rasterio, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def positive_float(text: str) -> float:
    """An argparse type: a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


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
    parser.add_argument(
        "--gsd",
        type=positive_float,
        default=None,
        help="metres per pixel for maps without a CRS (a CRS's own units always win)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.answers.stats import run_stats  # rasterio, pyproj, pyarrow: only to run

    try:
        summary = run_stats(args.pred, args.output, gsd_m=args.gsd)
    except (ValueError, FileNotFoundError) as error:
        print(f"landcover stats: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
