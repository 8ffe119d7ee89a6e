"""``landcover evaluate``: flags → :func:`pipelines.evaluate.job.evaluate`.

Parsing imports neither Beam nor TensorFlow, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_LABELS: tuple[str, str] = ("prediction", "second prediction")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover evaluate",
        description=(
            "Score predicted {id}_mask.png files against truths (DeepGlobe mIoU: 6 classes, "
            "truth-unknown ignored); write metrics.json, a confusion matrix picture and, with "
            "--images, side-by-side pictures per scene."
        ),
    )
    parser.add_argument("--pred", required=True, help="folder of predicted {id}_mask.png")
    parser.add_argument("--truth", required=True, help="folder of true {id}_mask.png")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    from pipelines.evaluate.job import METRICS_NAME, evaluate, format_table
    from pipelines.io import storage

    try:
        report = evaluate(
            args.pred,
            args.truth,
            args.output,
            images_uri=args.images,
            second_pred_uri=args.second_pred,
            labels=tuple(args.labels),
        )
    except FileNotFoundError as error:
        print(f"landcover evaluate: error: {error}", file=sys.stderr)
        return 2
    print(format_table(report))
    print(f"wrote {storage.join(args.output, METRICS_NAME)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
