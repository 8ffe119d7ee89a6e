"""``landcover train``: flags → :class:`TrainConfig` → :func:`models.train.loop.train`.

Flag defaults come from :class:`TrainConfig`, so the CLI, the flows and the Python API share
them. Parsing imports neither TensorFlow nor Keras, so ``--help`` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from models.strategy import STRATEGIES
from models.train.config import ARCHS, TrainConfig


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "all", "0") else int(text)


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainConfig(data="", output="")
    parser = argparse.ArgumentParser(
        prog="landcover train",
        description="Train unet | resnet50_unet with Dice loss on preprocessed TFRecords, under "
        "a tf.distribute strategy; writes model.keras + metadata.json (+ checkpoints/, logs/) "
        "to OUTPUT. Re-running with the same OUTPUT resumes from its last checkpoint.",
    )
    parser.add_argument("--data", required=True, help="records folder of `landcover preprocess`")
    parser.add_argument("--output", required=True, help="model folder (local or gs://)")
    parser.add_argument("--arch", required=True, choices=ARCHS)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument(
        "--steps-per-epoch",
        type=_optional_int,
        default=None,
        help="default: one pass over the train split (patches // global batch)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="per replica; the global batch is this × replicas",
    )
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--strategy", choices=STRATEGIES, default=defaults.strategy)
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy")
    parser.add_argument("--jit", action="store_true", help="XLA-compile the training step")
    parser.add_argument("--base-filters", type=int, default=defaults.base_filters)
    parser.add_argument(
        "--encoder-weights",
        default=defaults.encoder_weights,
        help="resnet50_unet encoder: none | imagenet (downloads) | PATH to a weights file",
    )
    parser.add_argument(
        "--freeze-encoder-epochs",
        type=int,
        default=defaults.freeze_encoder_epochs,
        help="resnet50_unet: keep the encoder frozen for the first N epochs",
    )
    parser.add_argument(
        "--val-steps", type=_optional_int, default=None, help="default: the whole val split"
    )
    parser.add_argument(
        "--crop-size", type=_optional_int, default=None, help="train on random crops (CPU runs)"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--deterministic", action="store_true", help="fixed data order and deterministic ops"
    )
    parser.add_argument("--no-augment", dest="augment", action="store_false")
    parser.add_argument(
        "--ignore-unknown", action="store_true", help="Dice loss ignores unknown-truth pixels"
    )
    parser.add_argument("--shuffle-buffer", type=int, default=defaults.shuffle_buffer)
    parser.add_argument("--log-every", type=int, default=defaults.log_every, help="steps")
    parser.add_argument(
        "--checkpoint-every", type=int, default=defaults.checkpoint_every, help="steps"
    )
    parser.add_argument("--keep-checkpoints", type=int, default=defaults.keep_checkpoints)
    parser.add_argument("--checkpoint-dir", default=None, help="default: OUTPUT/checkpoints")
    parser.add_argument("--log-dir", default=None, help="TensorBoard; default: OUTPUT/logs")
    parser.add_argument("--version", default=None, help="model version; default: OUTPUT's name")
    return parser


def config_from_args(argv: Sequence[str]) -> TrainConfig:
    args = vars(build_parser().parse_args(list(argv)))
    return TrainConfig(**args)


def _configure_logging() -> None:
    """Progress lines on stderr for the ``landcover`` loggers only (not TF's or absl's)."""
    logger = logging.getLogger("landcover")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a root handler (absl, Beam) would print every line twice


def main(argv: Sequence[str] | None = None) -> int:
    """``landcover train``: 0 on success, 3 on a non-finite loss, 2 on bad options or data."""
    config = config_from_args(sys.argv[1:] if argv is None else argv)
    _configure_logging()
    from models.train.loop import EXIT_NON_FINITE, NonFiniteLossError, train  # TensorFlow

    try:
        metadata = train(config)
    except NonFiniteLossError as err:
        print(f"landcover train: {err}", file=sys.stderr)
        return EXIT_NON_FINITE
    except (FileNotFoundError, ValueError) as err:
        print(f"landcover train: {err}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "output": config.output,
                "val_miou": metadata["val_miou"],
                "val_dice": metadata["val_dice"],
                "steps": metadata["steps"],
                "wall_time_s": metadata["wall_time_s"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
