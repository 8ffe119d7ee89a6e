"""What a training run depends on: one :class:`TrainConfig` for the CLI, the flows and Python.

Defaults, help, choices and bounds live here once, on the fields; ``landcover train`` builds
its flags from them (``models.train.cli``) and the training flow passes a ``TrainConfig`` (as a
dict) through Prefect. What a default means once the data is
known (``default_steps_per_epoch``) is decided here too. Importing this module loads neither
TensorFlow nor Keras, so validation and ``--help`` are instant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from models.loss_options import DICE_CLASSES, LOSSES, parse_class_weights
from models.registry import (
    ARCHITECTURES,
    ENCODER_ARCHITECTURES,
    architectures_text,
    check_architecture,
    spec,
)
from models.schedule_options import SCHEDULES
from models.strategy import STRATEGIES
from pipelines.core.manifest import Manifest
from pipelines.core.options import check_fields, option

ARCHS: tuple[str, ...] = ARCHITECTURES
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"

# ``--preset``: the recommended settings for a machine class; explicit flags still win.
# cpu: what the experiments on real DeepGlobe scenes chose for a 2-core machine (docs/recipe.md,
#   `landcover bench quality`): random 160² crops, batch 8, base width 8 (half the steps' cost
#   of base 16, so twice the steps in a budget: test mIoU 0.300 against 0.278 at 6 minutes) and
#   a peak learning rate of 3e-3 (0.278 against 0.242 at 1e-3, base 16), in float32;
#   validation still runs on whole patches.
# gpu: mixed precision (float16 compute, float32 variables, dynamic loss scaling) and a
#   per-replica batch of 8 whole 612² patches at full width, sized for a 16 GB+ GPU. XLA
#   (``--jit``) stays off: no GPU was available to measure it on; add ``--jit`` where
#   ``landcover bench train --jit`` measures it faster on the GPU at hand. Its learning rate is
#   the default (1e-3): no GPU run has measured another.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "batch_size": 8,
        "crop_size": 160,
        "base_filters": 8,
        "learning_rate": 3e-3,
        "mixed_precision": False,
        "jit": False,
    },
    "gpu": {
        "batch_size": 8,
        "crop_size": None,
        "base_filters": 64,
        "mixed_precision": True,
        "jit": False,
    },
}
# TrainConfig fields that do not change the trained weights: a resume may change them freely.
# Everything else is in the config fingerprint (``config_fingerprint_parts``).
RESULT_NEUTRAL_FIELDS: frozenset[str] = frozenset(
    {
        "data",  # the data is fingerprinted by content (``models.train.data_check``)
        "output",
        "log_every",
        "checkpoint_every",
        "keep_checkpoints",
        "checkpoint_dir",
        "log_dir",
        "version",
        "fresh",
        "preset",  # what it set is in the fields themselves
        "epochs",  # a longer run may continue one (the schedule then stretches; docs/train.md)
        "early_stopping_patience",
    }
)


def _encoder_weights(value: str) -> str:
    if not value:
        raise ValueError("encoder_weights is empty: none | imagenet | PATH | gs://…")
    return value


_RECIPE = "recipe"


@dataclass
class TrainConfig:
    """Everything a training run depends on (``options`` in ``metadata.json``).

    Each field is one option: its flag, help, choices and bounds are declared here
    (:func:`pipelines.core.options.option`) and ``landcover train``'s parser is built from
    them, so a new option is one line.
    """

    data: str = option(help="records folder of `landcover preprocess` (local or gs://)")
    output: str = option(help="model folder (local or gs://)")
    arch: str = option(
        "unet",
        help=f"architecture: {architectures_text()}",
        choices=ARCHITECTURES,
        required_flag=True,
    )
    epochs: int = option(1, help="passes of steps_per_epoch steps", minimum=1)
    steps_per_epoch: int | None = option(
        None, help="none: one pass over the train split (patches // global batch)", minimum=1
    )
    batch_size: int = option(4, help="per replica; the global batch is this × replicas", minimum=1)
    learning_rate: float = option(1e-3, help="peak learning rate (AdamW)", above=0)
    strategy: str = option("auto", help="tf.distribute strategy", choices=STRATEGIES)
    mixed_precision: bool = option(False, help="mixed_float16 policy")
    jit: bool = option(False, help="XLA-compile the training step")
    base_filters: int = option(
        64, help="width: U-Net stages, the ResNet50-U-Net decoder, the DeepLab head", minimum=1
    )
    encoder_weights: str = option(
        "none",
        help=f"{', '.join(ENCODER_ARCHITECTURES)}: none | imagenet (Keras's cache, else a "
        "download) | PATH or gs:// to a ResNet50 weights file",
        check=_encoder_weights,
    )
    freeze_encoder_epochs: int = option(
        0,
        help=f"{', '.join(ENCODER_ARCHITECTURES)}: keep the encoder frozen for the first N epochs",
        minimum=0,
    )
    val_steps: int | None = option(None, help="none: the whole val split", minimum=1)
    crop_size: int | None = option(
        None,
        help="train on random crops of this side (CPU runs); validation always uses whole "
        "patches; none: whole patches",
        minimum=1,
    )
    seed: int = option(0, help="seeds the weights, the data order and the augmentation")
    deterministic: bool = option(False, help="fixed data order and deterministic ops")
    augment: bool = option(True, help="dihedral flips/rotations and colour jitter")
    ignore_unknown: bool = option(False, help="the loss ignores unknown-truth pixels")
    dice_smooth: float = option(1.0, help="Dice smoothing, in pixels", minimum=0)
    shuffle_buffer: int = option(64, help="patches in the shuffle buffer", minimum=1)
    log_every: int = option(10, help="steps between progress lines", minimum=1)
    checkpoint_every: int = option(100, help="steps between checkpoints", minimum=1)
    keep_checkpoints: int = option(3, help="checkpoints kept", minimum=1)
    checkpoint_dir: str | None = option(None, help="none: OUTPUT/checkpoints")
    log_dir: str | None = option(None, help="TensorBoard; none: OUTPUT/logs")
    version: str | None = option(None, help="model version; none: OUTPUT's last part")
    # The recipe (docs/recipe.md).
    lr_schedule: str = option(
        "cosine",
        help="per step, after the warm-up",
        choices=SCHEDULES,
        group=_RECIPE,
    )
    warmup_fraction: float = option(
        0.05,
        help="linear learning-rate warm-up, as a fraction of the run's steps",
        minimum=0,
        below=1,
        group=_RECIPE,
    )
    decay_fraction: float = option(
        1.0,
        help="the rate decays over this last fraction of the steps after the warm-up (1: all "
        "of them; below 1 it holds the peak first)",
        minimum=0,
        maximum=1,
        group=_RECIPE,
    )
    bn_recalibration_batches: int = option(
        16,
        help="before each validation and the save, recompute the batch-norm statistics as the "
        "mean over this many training batches of the current weights (precise BN); 0: keep the "
        "moving averages",
        minimum=0,
        group=_RECIPE,
    )
    max_minutes: float | None = option(
        None,
        help="a training budget: measure the step time, plan the schedule for the steps that "
        "fit (epochs = validations), stop when it is spent, keep the best epoch; none: no budget",
        above=0,
    )
    min_lr_fraction: float = option(
        0.01, help="cosine/poly end at learning rate × this", minimum=0, maximum=1, group=_RECIPE
    )
    weight_decay: float = option(
        1e-4,
        help="AdamW, decoupled; biases and batch-norm scales/offsets excluded",
        minimum=0,
        group=_RECIPE,
    )
    loss: str = option("dice", help="the training loss", choices=LOSSES, group=_RECIPE)
    focal_gamma: float = option(2.0, help="focal+dice: the focusing γ", minimum=0, group=_RECIPE)
    dice_classes: str = option(
        "all",
        help="the classes a batch's Dice averages over: all, or those present in its truth",
        choices=DICE_CLASSES,
        group=_RECIPE,
    )
    class_weights: str = option(
        "none",
        help="none | auto (median frequency of the train pixels) | w1,…,w7 in palette order",
        check=parse_class_weights,
        group=_RECIPE,
    )
    color_jitter: float = option(
        0.1,
        help="brightness ±j, contrast/saturation ×[1-j, 1+j] (with augmentation); 0: off",
        minimum=0,
        below=1,
        group=_RECIPE,
    )
    early_stopping_patience: int | None = option(
        None,
        help="stop after N epochs without a better val mIoU; none: never",
        minimum=1,
        group=_RECIPE,
    )
    fresh: bool = option(False, help="discard OUTPUT's checkpoints and start over")
    preset: str | None = option(
        None,
        help="cpu: small crops and widths, float32; gpu: whole patches, full width, mixed "
        "precision. Explicit flags override it.",
        choices=tuple(PRESETS),
    )

    @classmethod
    def from_preset(cls, preset: str | None, **fields: Any) -> TrainConfig:
        """A config with ``preset``'s values under the given ``fields`` (which win)."""
        options = preset_options(preset) if preset else {}
        return cls(**{**options, **fields, "preset": preset})

    def validate(self) -> None:
        """The generic checks of every field (type, choices, bounds), then those that relate
        two fields; ValueError naming the option and why."""
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        check_architecture(self.arch)
        check_fields(self)
        if self.jit and self.deterministic:
            raise ValueError(
                "--jit and --deterministic cannot be combined: XLA has no deterministic "
                "max-pool gradient"
            )
        if self.max_minutes is not None and self.steps_per_epoch is not None:
            raise ValueError(
                "--max-minutes plans the steps per epoch from the measured step time: give it "
                "or --steps-per-epoch, not both"
            )
        if self.freeze_encoder_epochs and not spec(self.arch).has_encoder:
            raise ValueError(
                f"freeze_encoder_epochs needs an encoder ({', '.join(ENCODER_ARCHITECTURES)}); "
                f"{self.arch} has no encoder"
            )

    @property
    def checkpoint_root(self) -> str:
        from pipelines.io import storage  # Beam's filesystems: only when a run needs paths

        return self.checkpoint_dir or storage.join(self.output, CHECKPOINTS_DIR)

    @property
    def log_root(self) -> str:
        from pipelines.io import storage

        return self.log_dir or storage.join(self.output, LOGS_DIR)


def preset_options(name: str) -> dict[str, Any]:
    """The TrainConfig fields ``--preset name`` sets (a copy)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def config_fingerprint_parts(config: TrainConfig) -> dict[str, Any]:
    """The options that change the trained weights (all but :data:`RESULT_NEUTRAL_FIELDS`)."""
    return {k: v for k, v in sorted(asdict(config).items()) if k not in RESULT_NEUTRAL_FIELDS}


def default_steps_per_epoch(manifest: Manifest, global_batch: int) -> int:
    """``steps_per_epoch`` left unset: one pass over the train split, ``patches // global batch``
    (at least 1)."""
    return max(1, manifest.patch_count("train") // global_batch)
