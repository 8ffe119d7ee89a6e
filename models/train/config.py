"""What a training run depends on: one :class:`TrainConfig` for the CLI, the flows and Python.

Defaults live here once; ``landcover train`` builds its flags from them and the training flow
passes a ``TrainConfig`` (as a dict) through Prefect. What a default means once the data is
known (``default_steps_per_epoch``) is decided here too. Importing this module loads neither
TensorFlow nor Keras, so validation and ``--help`` are instant.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.registry import ARCHITECTURES, ENCODER_ARCHITECTURES, check_architecture
from models.strategy import STRATEGIES
from pipelines.core.manifest import Manifest

ARCHS: tuple[str, ...] = ARCHITECTURES
CHECKPOINTS_DIR = "checkpoints"
LOGS_DIR = "logs"


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


def default_steps_per_epoch(manifest: Manifest, global_batch: int) -> int:
    """``steps_per_epoch`` left unset: one pass over the train split, ``patches // global batch``
    (at least 1)."""
    return max(1, manifest.patch_count("train") // global_batch)
