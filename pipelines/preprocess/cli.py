"""``landcover preprocess``: flags → :func:`pipelines.preprocess.job.run_preprocess`.

Parsing imports neither Beam nor TensorFlow, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from pipelines.core.cli import print_error
from pipelines.core.gsd import DEEPGLOBE_GSD_M, check_gsd
from pipelines.core.palette import MASK_KINDS, LabelMap
from pipelines.core.records import CODECS, COMPRESSIONS, RecordFormat
from pipelines.io.label_map_file import read_label_map
from pipelines.preprocess.options import PreprocessOptions


def _num_shards(text: str) -> int:
    if text == "auto":
        return 0
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer or 'auto'")
    return value


def _label_map(text: str) -> LabelMap:
    """``1:0,2:1,…`` or a JSON file: :func:`pipelines.io.label_map_file.read_label_map`."""
    return read_label_map(text)


def _metres(text: str) -> float:
    try:
        return check_gsd(float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    default = PreprocessOptions.default  # the defaults live with the options, nowhere else
    parser = argparse.ArgumentParser(
        prog="landcover preprocess",
        description="Beam job: pair {id}_sat.jpg|tif with {id}_mask.png|tif under --input "
        "(suffixes in any case), decode the mask to class ids (RGB: threshold 128, palette "
        "lookup; a GeoTIFF label raster: class ids, see --label-map), cut patches, split "
        "train/val by scene and write sharded TFRecords, manifest.json and errors/ as a new "
        "version under --output (ROOT/versions/<id>/), switched to by ROOT/CURRENT only once "
        "complete. Flags this parser does not know (--runner, --project, --region, "
        "--temp_location, --direct_num_workers, ...) go to Beam's PipelineOptions.",
        # An abbreviation of ours must never swallow a Beam flag (or the reverse).
        allow_abbrev=False,
    )
    parser.add_argument("--input", required=True, help="folder or gs:// prefix of the scenes")
    parser.add_argument(
        "--output",
        required=True,
        help="dataset root (folder or gs:// prefix): each run writes ROOT/versions/<id>/ and "
        "then points ROOT/CURRENT at it",
    )
    parser.add_argument(
        "--patch-size",
        type=int,
        default=default("patch_size"),
        help="patch side in px (2448 → 16 patches a scene); a side that is not a multiple gets "
        "one more patch, flush with the edge, overlapping its neighbour",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=default("val_fraction"),
        help="share of scenes held out for val, in [0, 1) (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=default("seed"), help="seed of the train/val split"
    )
    parser.add_argument(
        "--codec",
        choices=CODECS,
        default=default("record_format").codec,
        help="patch pixels in a record: raw bytes or lossless PNG (default: %(default)s, the "
        "fastest to write and read; see `landcover bench preprocess --all-formats`)",
    )
    parser.add_argument(
        "--compression",
        choices=COMPRESSIONS,
        default=default("record_format").compression,
        help="file-level compression of the shards (default: %(default)s)",
    )
    parser.add_argument(
        "--num-shards",
        type=_num_shards,
        default=default("num_shards"),
        metavar="N|auto",
        help="shards per split; auto (default) lets the runner decide and avoids a shuffle",
    )
    parser.add_argument(
        "--mask-kind",
        choices=MASK_KINDS,
        default=default("mask_kind"),
        help="how mask pixels become class ids: auto (default: RGB and palette masks by their "
        "colors, a single-band {id}_mask.tif as class ids, a single-band PNG refused), rgb "
        "(colors only) or ids (one band of class ids)",
    )
    parser.add_argument(
        "--label-map",
        type=_label_map,
        default=default("label_map"),
        metavar="V:ID,...|FILE.json",
        help="class-id masks: which raster value is which class id (palette order 0-6), e.g. "
        '1:0,2:1,3:2 or a JSON file {"1": 0, ...}; values not mapped are bad input '
        "(default: values 0-6 are the class ids)",
    )
    parser.add_argument(
        "--gsd",
        type=_metres,
        default=default("gsd"),
        metavar="METRES",
        help="ground sample distance of every input scene in metres per pixel, overriding its "
        "georeference (default: a GeoTIFF's transform in its CRS's units; "
        f"{DEEPGLOBE_GSD_M:g} m, DeepGlobe's, for JPEG/PNG)",
    )
    parser.add_argument(
        "--target-gsd",
        type=_metres,
        default=default("target_gsd"),
        metavar="METRES",
        help="resample every scene to this GSD (image by area/bilinear, labels by mode/nearest) "
        "to train at a coarser GSD than the imagery; default: the scenes' own GSD, which must "
        "be one (a mixed input is refused, naming its GSDs)",
    )
    return parser


def options_from(args: argparse.Namespace) -> PreprocessOptions:
    """Parsed flags → validated :class:`PreprocessOptions` (ValueError says what is wrong)."""
    return PreprocessOptions(
        input_uri=args.input,
        output_uri=args.output,
        patch_size=args.patch_size,
        val_fraction=args.val_fraction,
        seed=args.seed,
        record_format=RecordFormat(args.codec, args.compression),
        num_shards=args.num_shards,
        mask_kind=args.mask_kind,
        label_map=args.label_map,
        gsd=args.gsd,
        target_gsd=args.target_gsd,
    ).validate()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, beam_args = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    try:
        options = options_from(args)
    except ValueError as exc:
        parser.error(str(exc))  # exits 2, as for any other bad flag
    from pipelines.core.progress import show_progress
    from pipelines.preprocess.job import run_preprocess, summary  # Beam: only to run
    from pipelines.preprocess.resolution import MixedGsdError

    show_progress()  # "preprocess: 12/40 scenes, 0.8 scenes/s, ~35 s left" every 10 s
    start = time.perf_counter()
    try:
        manifest = run_preprocess(options, beam_args=beam_args)
    except (FileNotFoundError, MixedGsdError) as exc:
        return print_error("landcover preprocess", exc, status=1)  # flags fine, input not
    print(summary(manifest, args.output.rstrip("/"), time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
