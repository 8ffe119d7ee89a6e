"""``landcover train``: flags → :class:`TrainConfig` → :func:`models.train.loop.train`.

The flags are generated from :class:`TrainConfig`'s fields (name, type, default, choices, help:
``pipelines.core.options``), so the CLI, the flows and the Python API share one definition of
every option. Parsing imports neither TensorFlow nor Keras, so ``--help`` and a bad flag answer
at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from models.train.config import PRESETS, TrainConfig
from pipelines.core.options import add_flags

RECIPE_GROUP = "recipe (docs/recipe.md)"


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The flags, one per :class:`TrainConfig` field; with ``preset``, its values are the
    defaults (explicit flags still win)."""
    defaults = TrainConfig.from_preset(preset, data="", output="")
    parser = argparse.ArgumentParser(
        prog="landcover train",
        description="Train a segmentation model on preprocessed TFRecords under a "
        "tf.distribute strategy; writes model.keras (the epoch with the best val mIoU) + "
        "metadata.json (+ checkpoints/, logs/) to OUTPUT. Re-running with the same OUTPUT, data "
        "and options resumes from its last checkpoint; other data or options are refused "
        "(--fresh starts over).",
    )
    add_flags(parser, TrainConfig, defaults, groups={"recipe": RECIPE_GROUP})
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
