"""``landcover predict``: flags → :func:`pipelines.predict.job.run_predict`.

Parsing imports neither Beam nor TensorFlow, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pipelines.core.tiling import TILE_BATCH_SIZE, TILE_OVERLAP, TILE_SIZE

# Literal copies of the job's choices (importing the job would import Beam); a test keeps
# them equal to pipelines.predict.job / outputs.
FORMATS = ("png", "cog")
TTA_MODES = ("none", "flip", "d4")
DEFAULT_BLOCK_SIZE = 4096


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
    parser.add_argument(
        "--tile", type=int, default=TILE_SIZE, help="tile side in px (default %(default)s)"
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=TILE_OVERLAP,
        help="overlap of neighbouring tiles in px (default %(default)s)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=TILE_BATCH_SIZE, help="tiles per forward pass"
    )
    parser.add_argument("--overwrite", action="store_true", help="re-predict done scenes")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output format (default: cog for georeferenced inputs, png otherwise)",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_MODES,
        default="none",
        help="test-time augmentation: average over 4 flips or the 8 dihedral transforms",
    )
    parser.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK_SIZE,
        help="split cog scenes with a side above this into blocks predicted in parallel "
        "(default %(default)s; 0 = never)",
    )
    parser.add_argument(
        "--class-ids",
        action="store_true",
        help="png format: also write {id}_classes.png (class ids 0..6); a cog mask holds ids",
    )
    parser.add_argument(
        "--probabilities",
        action="store_true",
        help="also write {id}_probs.npz (png: float16 H×W×7) or {id}_probs.tif (cog: uint8 "
        "band per class); cog scenes are then not split into blocks",
    )
    parser.add_argument(
        "--scenes-per-wave",
        type=int,
        default=None,
        help="scenes per pipeline run; bounds local memory (default 8 locally, 0 = all)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.predict.job import run_predict  # Beam and TensorFlow: only to run

    try:
        summary = run_predict(
            args.model,
            args.input,
            args.output,
            tile=args.tile,
            overlap=args.overlap,
            batch_size=args.batch_size,
            overwrite=args.overwrite,
            write_class_ids=args.class_ids,
            write_probabilities=args.probabilities,
            beam_args=beam_args,
            scenes_per_wave=args.scenes_per_wave,
            fmt=args.format,
            tta=args.tta,
            block_size=args.block_size,
        )
    except (ValueError, FileNotFoundError) as error:
        print(f"landcover predict: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
