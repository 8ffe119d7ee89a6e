"""The ``landcover`` command: one sub-command per stage.

Each sub-command lives in its stage's module as ``main(argv) -> int`` and is imported only when
it runs, so ``landcover --help`` and light commands (``synth``) do not pay for importing
TensorFlow, Beam and Prefect together.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from collections.abc import Sequence

from models.registry import architectures_text
from pipelines.core.quiet import quiet_harmless

# name → (module, one-line help). `bench` nests one level more.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("pipelines.synth", "write synthetic scenes in DeepGlobe's file format"),
    "preprocess": (
        "pipelines.preprocess.cli",
        "Beam: scenes → one-hot patches → sharded TFRecords",
    ),
    "train": (
        "models.train.cli",
        f"train {architectures_text()} with Dice loss under tf.distribute",
    ),
    "predict": ("pipelines.predict.cli", "Beam: scenes → predicted {id}_mask.png in storage"),
    "evaluate": ("pipelines.evaluate.cli", "mIoU, per-class IoU/Dice, confusion matrix, pictures"),
    "stats": ("pipelines.answers.stats_cli", "class areas (m², ha) of predicted masks, by windows"),
    "change": ("pipelines.change.cli", "Beam: change between two dates, from→to maps and ha"),
    "vectorize": ("pipelines.answers.vectorize_cli", "class polygons (GeoPackage | GeoParquet)"),
    "promote": ("flows.promote", "make a trained model the one inference uses (checked, atomic)"),
    "up": ("flows.up", "start the embedded default: Prefect server, deployments, drop watcher"),
    "demo": ("flows.demo", "run the whole job end to end on synthetic data"),
}
BENCHMARKS: dict[str, tuple[str, str]] = {
    "preprocess": ("pipelines.bench.preprocess", "ms per scene of preprocessing vs decode only"),
    "input": ("pipelines.bench.input", "tf.data input patches/s vs a seed-style loader"),
    "train": ("pipelines.bench.train", "training patches/s and ms/step of each architecture"),
    "predict": ("pipelines.bench.predict", "inference scenes/minute and overhead share"),
    "tta": ("pipelines.bench.tta", "mIoU and seconds of test-time augmentation, held-out scenes"),
    "quality": ("pipelines.bench.quality", "recipe smoke check on real scenes vs baselines"),
    "vectorize": ("pipelines.bench.vectorize", "polygons of a 16384² map: strips vs whole, RSS"),
    "evaluate": ("pipelines.bench.evaluate", "peak RSS and seconds scoring a 16384² COG pair"),
}


def _usage(table: dict[str, tuple[str, str]], prog: str) -> str:
    width = max(len(name) for name in table)
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in table.items())
    return (
        f"usage: {prog} <command> [options]\n\ncommands:\n{rows}\n\n"
        f"{prog} <command> --help for its options."
    )


def _dispatch(table: dict[str, tuple[str, str]], prog: str, argv: Sequence[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(table, prog))
        return 0
    name, rest = argv[0], list(argv[1:])
    if name not in table:
        print(f"{prog}: unknown command {name!r}; valid: {', '.join(table)}", file=sys.stderr)
        return 2
    from pipelines.io.credentials import MissingCredentialsError, check_credentials, gs_uris

    try:  # before the stage's imports and its first bucket access (minutes of retries)
        for uri in gs_uris(rest):
            check_credentials(uri)
    except MissingCredentialsError as error:
        print(f"{prog} {name}: {error}", file=sys.stderr)
        return 2
    module = importlib.import_module(table[name][0])
    return int(module.main(rest) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``landcover`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    # google-api-core warns at import that Python 3.11 support ends in 2027: not ours to act on.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")
    # TensorFlow's C++ start-up lines (oneDNN, CUDA probing): warnings and info off, errors kept.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    quiet_harmless()
    if args and args[0] == "bench":
        return _dispatch(BENCHMARKS, "landcover bench", args[1:])
    table = {**COMMANDS, "bench": ("", "benchmarks: " + ", ".join(BENCHMARKS))}
    return _dispatch(table, "landcover", args)


if __name__ == "__main__":
    sys.exit(main())
