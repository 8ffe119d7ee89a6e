"""``landcover evaluate``: flags → :func:`pipelines.evaluate.job.evaluate`.

Parsing imports neither Beam nor TensorFlow, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.core.cli import print_error
from pipelines.core.palette import MASK_KINDS
from pipelines.io.label_map_file import read_label_map

DEFAULT_LABELS: tuple[str, str] = ("prediction", "second prediction")
PROG = "landcover evaluate"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Score predicted masks ({id}_mask.png colours or predict's {id}_mask.tif COGs) "
            "against truths ({id}_mask.png colours or {id}_mask.tif label rasters of class ids) "
            "(DeepGlobe mIoU: 6 classes, truth-unknown and no-data pixels left out); each pair "
            "must share one grid (size, transform, CRS) or goes to errors/; write metrics.json, "
            "a confusion matrix picture and, with --images, side-by-side pictures per scene. "
            "Exits 1 when no scene could be scored, saying why."
        ),
    )
    parser.add_argument("--pred", required=True, help="folder of predicted {id}_mask.png|tif")
    parser.add_argument("--truth", required=True, help="folder of true {id}_mask.png|tif")
    parser.add_argument("--output", required=True, help="folder for metrics.json and pictures")
    parser.add_argument("--images", help="folder of {id}_sat.jpg scenes, for the pictures")
    parser.add_argument("--second-pred", help="a second model's predictions, to compare")
    parser.add_argument(
        "--labels",
        nargs="+",
        default=list(DEFAULT_LABELS),
        metavar="LABEL",
        help="names of the prediction and second prediction (default: %(default)s)",
    )
    parser.add_argument(
        "--mask-kind",
        choices=MASK_KINDS,
        default="auto",
        help="how truth pixels become class ids: auto (default: RGB by colours, one band, "
        "with or without a colour table, as class ids), rgb (colours, a colour table's "
        "colours too) or ids",
    )
    parser.add_argument(
        "--label-map",
        type=read_label_map,
        metavar="V:ID,...|FILE.json",
        help="truth label rasters: which raster value is which class id (palette order 0-6), "
        "e.g. 1:0,2:1 (default: values 0-6 are the class ids)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.core.palette import MaskRule
    from pipelines.evaluate.job import METRICS_NAME, NothingScoredError, evaluate, format_table
    from pipelines.io import storage

    try:
        rule = MaskRule(args.mask_kind, args.label_map)
    except ValueError as error:
        return print_error(PROG, error)
    try:
        report = evaluate(
            args.pred,
            args.truth,
            args.output,
            images_uri=args.images,
            second_pred_uri=args.second_pred,
            labels=tuple(args.labels),
            rule=rule,
        )
    except FileNotFoundError as error:
        return print_error(PROG, error)
    except NothingScoredError as error:  # exit 1: the inputs were read, nothing could be scored
        print_error(PROG, error)
        print(f"wrote {storage.join(args.output, METRICS_NAME)}", file=sys.stderr)
        return 1
    print(format_table(report))
    print(f"wrote {storage.join(args.output, METRICS_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
