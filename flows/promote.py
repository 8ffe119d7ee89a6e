"""``landcover promote MODEL``: make a trained model the one inference uses, by hand.

The same checks and pointer update the train flow uses (:func:`flows.registry.
promote_if_better`: the model file must exist, its size and sha256 go into the pointer, which
is replaced in one atomic write), after one more: the model must load for inference
(``models.serving.load_model``, ``safe_mode``) and give one output per class, so a truncated
or foreign file is refused before it could reach the nightly run. The score it competes with
is its ``metadata.json``'s ``val_miou`` (or ``--score``); a score that does not beat the
promoted model's is refused unless ``--force``.

Exit status: 0 promoted, 1 not promoted (a lower or equal score), 2 refused (bad model or
arguments). Parsing imports nothing heavy; TensorFlow loads only to check the model.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

ROOT_ENV = "LANDCOVER_ROOT"


class RefusedError(ValueError):
    """The model cannot be promoted; the message says why."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="landcover promote",
        allow_abbrev=False,
        description=(
            "Point <root>/models/promoted.json at MODEL (a model folder with model.keras and "
            "metadata.json, or a .keras file), as the train flow does after evaluation: the "
            "model must load, and its val mIoU must beat the promoted model's unless --force."
        ),
    )
    parser.add_argument("model", metavar="MODEL", help="model folder or model.keras (or gs://)")
    parser.add_argument(
        "--root", default=None, help=f"data root holding models/ (default: ${ROOT_ENV})"
    )
    parser.add_argument("--force", action="store_true", help="promote even with a lower score")
    parser.add_argument("--score", type=float, help="val mIoU to record (default: metadata's)")
    parser.add_argument("--arch", help="architecture name (default: metadata's)")
    parser.add_argument("--version", help="model version (default: metadata's, else folder name)")
    return parser


def check_loads(model_file: str) -> dict[str, Any]:
    """Load the model as inference does; RefusedError unless it loads and has 7 outputs."""
    from models.serving import load_model
    from pipelines.core.palette import NUM_CLASSES

    try:
        model = load_model(model_file)
    except Exception as error:  # a corrupt file, a foreign one, unsafe layers: all refusals
        raise RefusedError(f"{model_file} does not load: {error}") from None
    channels = model.output_shape[-1] if model.output_shape else None
    if channels != NUM_CLASSES:
        raise RefusedError(
            f"{model_file} predicts {channels} channels per pixel, not the {NUM_CLASSES} classes"
        )
    return {"parameters": int(model.count_params()), "output_channels": channels}


def candidate_of(args: argparse.Namespace) -> dict[str, Any]:
    """The candidate's pointer fields: its metadata.json, overridden by the flags."""
    from flows.registry import model_file
    from pipelines.core.naming import METADATA_FILE, basename
    from pipelines.io import storage

    path = model_file(args.model)
    folder = path.rsplit("/", 1)[0] if "/" in path else "."
    metadata_uri = storage.join(folder, METADATA_FILE)
    metadata: dict[str, Any] = {}
    if storage.exists(metadata_uri):
        try:
            metadata = json.loads(storage.read_text(metadata_uri))
        except ValueError as error:
            raise RefusedError(f"{metadata_uri} is not JSON: {error}") from None
    score = args.score if args.score is not None else metadata.get("val_miou")
    candidate: dict[str, Any] = {
        "arch": args.arch or metadata.get("arch"),
        "version": args.version or metadata.get("version") or basename(folder),
        "model_uri": folder if path.endswith("/model.keras") else path,
        "val_miou": score,
        "evaluated_on": "training validation (metadata.json)"
        if args.score is None
        else "given with --score",
        "promoted_by": "landcover promote",
    }
    missing = [k for k in ("arch", "val_miou") if candidate[k] in (None, "")]
    if missing:
        raise RefusedError(
            f"{metadata_uri} gives no {' or '.join(missing)}; pass "
            + " ".join(f"--{k.replace('val_miou', 'score')}" for k in missing)
        )
    if not math.isfinite(float(candidate["val_miou"])):
        raise RefusedError(f"score {candidate['val_miou']} is not a number")
    return candidate


def promote(args: argparse.Namespace) -> dict[str, Any]:
    from flows.registry import model_file, promote_if_better, read_promoted
    from pipelines.io import storage

    root = args.root or os.environ.get(ROOT_ENV)
    if not root:
        raise RefusedError(f"no data root: pass --root or set ${ROOT_ENV}")
    path = model_file(args.model)
    if not storage.exists(path):
        raise RefusedError(f"no model at {path}")
    candidate = candidate_of(args)
    loaded = check_loads(path)
    before = read_promoted(root)
    promoted = promote_if_better(root, candidate, force=args.force)
    after = read_promoted(root)
    return {
        "promoted": promoted,
        "model_version": (after or {}).get("model_version") if promoted else None,
        "candidate": candidate,
        "loaded": loaded,
        "previous": None if before is None else before.get("model_version"),
        "previous_score": None if before is None else before.get("val_miou"),
        "forced": bool(after and after.get("forced")) if promoted else False,
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        result = promote(args)
    except (RefusedError, FileNotFoundError, ValueError) as error:
        print(f"landcover promote: refused: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    if not result["promoted"]:
        print(
            f"landcover promote: kept {result['previous']} (val mIoU {result['previous_score']}): "
            f"the candidate's {result['candidate']['val_miou']} is not higher; --force promotes "
            "it anyway",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
