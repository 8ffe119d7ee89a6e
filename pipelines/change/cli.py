"""``landcover change``: flags → :func:`pipelines.change.job.run_change`.

Parsing imports neither Beam nor rasterio, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.core.cli import add_map_gsd, print_summary


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover change",
        allow_abbrev=False,
        description=(
            "Beam job: land-cover change between two dates. Pairs the class maps of --before "
            "and --after by scene id, or by footprint for georeferenced maps (their bounds "
            "intersect in a common CRS), brings after onto before's grid when they differ "
            "(nearest, by windows), and writes per pair {pair}_change.tif (from→to codes with "
            "a colour table and names) and {pair}_change.json (the from→to matrix in ha), plus "
            "change_summary.parquet/.csv for the run. Nodata in either date is nodata. Other "
            "flags go to Beam."
        ),
    )
    parser.add_argument("--before", required=True, help="earlier predictions folder or map")
    parser.add_argument("--after", required=True, help="later predictions folder or map")
    parser.add_argument("--output", required=True, help="folder for the change outputs")
    add_map_gsd(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.change.job import run_change  # Beam and rasterio: only to run

    return print_summary(
        "landcover change",
        lambda: run_change(
            args.before, args.after, args.output, gsd_m=args.gsd, beam_args=beam_args
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
