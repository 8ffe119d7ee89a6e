"""What a training run depends on: one :class:`TrainConfig` for the CLI, the flows and Python.

Defaults live here once; ``landcover train`` builds its flags from them and the training flow
passes a ``TrainConfig`` (as a dict) through Prefect. What a default means once the data is
known (``default_steps_per_epoch``) is decided here too. Importing this module loads neither
TensorFlow nor Keras, so validation and ``--help`` are instant.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from models.loss_options import check_loss, parse_class_weights
from models.registry import ARCHITECTURES, ENCODER_ARCHITECTURES, check_architecture
from models.strategy import STRATEGIES
from pipelines.core.manifest import Manifest

ARCHS: tuple[str, ...] = ARCHITECTURES
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"
LR_SCHEDULES: tuple[str, ...] = ("constant", "cosine", "poly")

# ``--preset``: the recommended settings for a machine class; explicit flags still win.
# cpu: small random crops and widths in float32, so a 2-core laptop runs real steps in seconds;
#   validation still runs on whole patches.
# gpu: mixed precision (float16 compute, float32 variables, dynamic loss scaling) and a
#   per-replica batch of 8 whole 612² patches at full width, sized for a 16 GB+ GPU. XLA
#   (``--jit``) stays off: no GPU was available to measure it on; add ``--jit`` where
#   ``landcover bench train --jit`` measures it faster on the GPU at hand.
PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {
        "batch_size": 8,
        "crop_size": 160,
        "base_filters": 16,
        "mixed_precision": False,
        "jit": False,
        "warmup_epochs": 1,
    },
    "gpu": {
        "batch_size": 8,
        "crop_size": None,
        "base_filters": 64,
        "mixed_precision": True,
        "jit": False,
        "warmup_epochs": 1,
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
        "epochs",  # a longer run may continue one (the schedule then stretches; see README)
        "early_stopping_patience",
    }
)


@dataclass
class TrainConfig:
    """Everything a training run depends on (``options`` in ``metadata.json``)."""

    data: str
    output: str
    arch: str = "unet"
    epochs: int = 1
    steps_per_epoch: int | None = None  # None: one pass over the train split
    batch_size: int = 4  # per replica; the global batch is this × replicas
    learning_rate: float = 1e-3
    strategy: str = "auto"
    mixed_precision: bool = False
    jit: bool = False
    base_filters: int = 64
    encoder_weights: str = "none"
    freeze_encoder_epochs: int = 0
    val_steps: int | None = None  # None: the whole val split
    crop_size: int | None = None  # train on random crops of this size (CPU runs); None: whole
    seed: int = 0
    deterministic: bool = False
    augment: bool = True
    ignore_unknown: bool = False
    dice_smooth: float = 1.0
    shuffle_buffer: int = 64
    log_every: int = 10
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    checkpoint_dir: str | None = None  # default OUTPUT/checkpoints
    log_dir: str | None = None  # default OUTPUT/logs
    version: str | None = None  # the model version in metadata; default: OUTPUT's last part
    # The recipe (README "Training recipe").
    lr_schedule: str = "cosine"  # constant | cosine | poly, per step, after the warm-up
    warmup_epochs: float = 0.0  # linear warm-up from ~0 to learning_rate
    min_lr_fraction: float = 0.01  # cosine/poly end at learning_rate × this
    weight_decay: float = 1e-4  # AdamW, decoupled; biases and batch-norm scales/offsets excluded
    loss: str = "dice"  # dice | dice+ce | focal+dice
    focal_gamma: float = 2.0
    class_weights: str = "none"  # none | auto (median frequency of the train pixels) | w1,…,w7
    color_jitter: float = 0.1  # brightness ±j, contrast and saturation ×[1-j, 1+j]; 0: off
    early_stopping_patience: int | None = None  # stop after N epochs without a better val mIoU
    fresh: bool = False  # discard the checkpoints under OUTPUT and start over
    preset: str | None = None  # cpu | gpu, as recorded; its values are the fields above

    @classmethod
    def from_preset(cls, preset: str | None, **fields: Any) -> TrainConfig:
        """A config with ``preset``'s values under the given ``fields`` (which win)."""
        options = preset_options(preset) if preset else {}
        return cls(**{**options, **fields, "preset": preset})

    def validate(self) -> None:
        check_architecture(self.arch)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; valid: {', '.join(STRATEGIES)}")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "base_filters": self.base_filters,
            "log_every": self.log_every,
            "checkpoint_every": self.checkpoint_every,
            "keep_checkpoints": self.keep_checkpoints,
        }
        for name in ("steps_per_epoch", "val_steps", "crop_size"):
            if getattr(self, name) is not None:
                positive[name] = getattr(self, name)
        for name, value in positive.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.freeze_encoder_epochs < 0:
            raise ValueError(
                f"freeze_encoder_epochs must be >= 0, got {self.freeze_encoder_epochs}"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"unknown lr_schedule {self.lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}"
            )
        check_loss(self.loss)
        parse_class_weights(self.class_weights)
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        for name in ("warmup_epochs", "weight_decay", "focal_gamma", "color_jitter"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.min_lr_fraction <= 1:
            raise ValueError(f"min_lr_fraction must be in [0, 1], got {self.min_lr_fraction}")
        if self.color_jitter >= 1:
            raise ValueError(f"color_jitter must be < 1, got {self.color_jitter}")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError(
                f"early_stopping_patience must be >= 1, got {self.early_stopping_patience}"
            )
        if self.jit and self.deterministic:
            raise ValueError(
                "--jit and --deterministic cannot be combined: XLA has no deterministic "
                "max-pool gradient"
            )
        if self.freeze_encoder_epochs and self.arch not in ENCODER_ARCHITECTURES:
            raise ValueError("freeze_encoder_epochs needs resnet50_unet (unet has no encoder)")

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
