"""``landcover predict``: flags → :class:`PredictOptions` → ``run_predict``.

The flags are generated from :class:`pipelines.predict.options.PredictOptions` (the one home of
predict's options, shared with the flows and the benchmarks). Parsing imports neither Beam nor
TensorFlow, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from pipelines.core.cli import print_summary
from pipelines.core.options import add_flags
from pipelines.predict.options import PredictOptions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover predict",
        allow_abbrev=False,  # an abbreviation must never swallow a Beam flag
        description=(
            "Beam job: predict a class map for every {id}_sat.jpg|png|tif under --input: "
            "{id}_mask.png in DeepGlobe colours for JPEG/PNG scenes, {id}_mask.tif (a COG with "
            "the input's CRS, transform and nodata) for georeferenced rasters. Each scene's "
            "{id}.done.json is written last; a scene whose record matches the input, model and "
            "options and whose outputs are intact is skipped (unless --overwrite), so a re-run "
            "finishes what a crashed run left. Other flags go to Beam (e.g. --runner "
            "DataflowRunner --project P --region R --temp_location gs://…)."
        ),
    )
    parser.add_argument("--model", required=True, help="model.keras URI, or a folder holding one")
    parser.add_argument("--input", required=True, help="folder (local or gs://) of scenes")
    parser.add_argument("--output", required=True, help="folder (local or gs://) for masks")
    add_flags(parser, PredictOptions)
    return parser


def options_from_args(args: argparse.Namespace) -> PredictOptions:
    """The :class:`PredictOptions` of parsed flags (the fields of the same names)."""
    names = {field.name for field in dataclasses.fields(PredictOptions)}
    return PredictOptions(**{k: v for k, v in vars(args).items() if k in names})


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.core.progress import show_progress
    from pipelines.predict.job import run_predict  # Beam and TensorFlow: only to run

    show_progress()  # "predict: 3/12 scenes, 0.05 scenes/s, ~180 s left" every 10 s, on stderr
    return print_summary(
        "landcover predict",
        lambda: run_predict(
            args.model, args.input, args.output, options_from_args(args), beam_args=beam_args
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
