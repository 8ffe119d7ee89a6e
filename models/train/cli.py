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
from typing import Any

from models.loss_options import LOSSES, parse_class_weights
from models.strategy import STRATEGIES
from models.train.config import ARCHS, LR_SCHEDULES, PRESETS, TrainConfig


def _optional_int(text: str) -> int | None:
    return None if text.lower() in ("none", "all", "0") else int(text)


def _class_weights(text: str) -> str:
    try:
        parse_class_weights(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The flags; with ``preset``, its values are the defaults (explicit flags still win)."""
    defaults = TrainConfig.from_preset(preset, data="", output="")
    parser = argparse.ArgumentParser(
        prog="landcover train",
        description="Train a segmentation model on preprocessed TFRecords under a "
        "tf.distribute strategy; writes model.keras (the epoch with the best val mIoU) + "
        "metadata.json (+ checkpoints/, logs/) to OUTPUT. Re-running with the same OUTPUT, data "
        "and options resumes from its last checkpoint; other data or options are refused "
        "(--fresh starts over).",
    )
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=preset,
        help="cpu: small crops and widths, float32; gpu: whole patches, full width, mixed "
        "precision (see README). Explicit flags override it.",
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
    parser.add_argument(
        "--mixed-precision",
        action=argparse.BooleanOptionalAction,
        default=defaults.mixed_precision,
        help="mixed_float16 policy",
    )
    parser.add_argument(
        "--jit",
        action=argparse.BooleanOptionalAction,
        default=defaults.jit,
        help="XLA-compile the training step",
    )
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
        "--crop-size",
        type=_optional_int,
        default=defaults.crop_size,
        help="train on random crops (CPU runs); validation always uses whole patches",
    )
    recipe = parser.add_argument_group("recipe (README: Training recipe)")
    recipe.add_argument("--lr-schedule", choices=LR_SCHEDULES, default=defaults.lr_schedule)
    recipe.add_argument(
        "--warmup-epochs",
        type=float,
        default=defaults.warmup_epochs,
        help="linear learning-rate warm-up before the decay",
    )
    recipe.add_argument(
        "--min-lr-fraction",
        type=float,
        default=defaults.min_lr_fraction,
        help="cosine/poly end at learning rate × this",
    )
    recipe.add_argument(
        "--weight-decay", type=float, default=defaults.weight_decay, help="AdamW, decoupled"
    )
    recipe.add_argument("--loss", choices=LOSSES, default=defaults.loss)
    recipe.add_argument("--focal-gamma", type=float, default=defaults.focal_gamma)
    recipe.add_argument(
        "--class-weights",
        type=_class_weights,
        default=defaults.class_weights,
        help="none | auto (median frequency of the train pixels) | w1,…,w7 in palette order",
    )
    recipe.add_argument(
        "--color-jitter",
        type=float,
        default=defaults.color_jitter,
        help="brightness ±j, contrast/saturation ×[1-j, 1+j] (with augmentation); 0: off",
    )
    recipe.add_argument(
        "--early-stopping-patience",
        type=_optional_int,
        default=defaults.early_stopping_patience,
        help="stop after N epochs without a better val mIoU (default: never)",
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="discard OUTPUT's checkpoints and start over (instead of resuming)",
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
    """Parse twice: first for ``--preset`` (its values become the defaults), then everything."""
    preset_parser = argparse.ArgumentParser(add_help=False)
    preset_parser.add_argument("--preset", choices=tuple(PRESETS), default=None)
    preset = preset_parser.parse_known_args(list(argv))[0].preset
    args = vars(build_parser(preset).parse_args(list(argv)))
    return TrainConfig(**args)


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to ``sys.stderr`` as it is at each record, not as it was at setup: when the
    stream is replaced and closed (pytest's capture, a caller's redirect), the handler follows
    instead of raising "I/O operation on closed file" on every later line."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:  # StreamHandler.__init__ assigns it; ignored
        pass


def log_progress_to_stderr() -> None:
    """Progress lines on stderr for the ``landcover`` loggers only (not TF's or absl's), once.

    For the commands that train in their own process: ``landcover train`` and
    ``landcover bench quality``.
    """
    logger = logging.getLogger("landcover")
    if not any(isinstance(h, _CurrentStderrHandler) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # a root handler (absl, Beam) would print every line twice


def main(argv: Sequence[str] | None = None) -> int:
    """``landcover train``: 0 on success, 3 on a non-finite loss, 2 on bad options or data."""
    config = config_from_args(sys.argv[1:] if argv is None else argv)
    log_progress_to_stderr()
    from models.train.epoch import NonFiniteLossError
    from models.train.loop import EXIT_NON_FINITE, train  # TensorFlow

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
