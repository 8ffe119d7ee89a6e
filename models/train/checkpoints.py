"""Checkpoint and resume state of a training run: what a killed run needs to go on exactly.

A run's position is one ``tf.train.Checkpoint`` (model weights, optimizer state such as Adam's
moments and the loss scale, the global step and the epoch counter) written by a
``tf.train.CheckpointManager`` under ``OUTPUT/checkpoints`` (``TrainConfig.checkpoint_root``),
plus ``train_state.json`` beside it for what TensorFlow does not checkpoint (the epoch history
and the steps earlier runs resumed from). :func:`epoch_position` turns the restored step and
epoch into the number of batches of the interrupted epoch already trained on, which the loop
skips (the same batches with ``--deterministic``).

Only the chief writes real checkpoints; under multi-worker the other workers write to a
throw-away local folder (saving takes part in collectives, so they must save too), deleted by
:meth:`RunCheckpoints.close`. Files go through TensorFlow's own filesystem layer, which speaks
real ``gs://`` but not the storage emulator; ``checkpoint_dir`` moves them elsewhere.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

STATE_FILE = "train_state.json"


def epoch_position(step: int, epoch: int, steps_per_epoch: int) -> int:
    """Steps of ``epoch`` already done when the global step counter is ``step``."""
    return min(max(step - epoch * steps_per_epoch, 0), steps_per_epoch)


def read_state(directory: str) -> dict[str, Any]:
    """``train_state.json`` under ``directory``; ``{}`` when there is none yet."""
    import tensorflow as tf

    path = f"{directory.rstrip('/')}/{STATE_FILE}"
    if not tf.io.gfile.exists(path):
        return {}
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.loads(handle.read())  # type: ignore[no-any-return]


def write_state(directory: str, state: dict[str, Any]) -> None:
    """Write ``train_state.json`` whole or not at all (temporary file, then rename)."""
    import tensorflow as tf

    tf.io.gfile.makedirs(directory)
    path = f"{directory.rstrip('/')}/{STATE_FILE}"
    tmp = f"{path}.tmp"
    with tf.io.gfile.GFile(tmp, "w") as handle:
        handle.write(json.dumps(state, indent=2))
    tf.io.gfile.rename(tmp, path, overwrite=True)


def checkpoint_write_dir(checkpoint_root: str, is_chief: bool) -> str:
    """The chief writes the real checkpoints; other workers a throw-away local folder."""
    if is_chief:
        return checkpoint_root
    return tempfile.mkdtemp(prefix="landcover-worker-ckpt-")


@dataclass
class Restored:
    """What a restore brought back: the checkpoint path, its step and epoch, the side state."""

    checkpoint: str
    step: int
    epoch: int
    state: dict[str, Any] = field(default_factory=dict)


class RunCheckpoints:
    """The checkpoint of one run: model, optimizer, step and epoch, saved and restored together.

    ``step`` and ``epoch`` are ``tf.Variable`` counters the loop advances; they are part of the
    checkpoint, so a restore puts them back with the weights.
    """

    def __init__(
        self,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        *,
        checkpoint_root: str,
        is_chief: bool,
        keep: int,
    ) -> None:
        import tensorflow as tf

        self.root = checkpoint_root
        self.is_chief = is_chief
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, step=self.step, epoch=self.epoch
        )
        self.write_dir = checkpoint_write_dir(checkpoint_root, is_chief)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.write_dir, max_to_keep=keep if is_chief else 1
        )

    def restore_latest(self) -> Restored | None:
        """Restore the newest checkpoint under the root, if any.

        Raises ValueError when it does not fit the model (another architecture or width, or
        mixed precision switched): resuming with other options would silently train garbage.
        """
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(self.root)
        if not latest:
            return None
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as err:
            raise ValueError(
                f"checkpoint {latest} does not match this model: resume with the options it was "
                f"started with (--arch, --base-filters, --mixed-precision) or use a new output "
                f"({type(err).__name__}: {err})"
            ) from err
        return Restored(
            checkpoint=latest,
            step=int(self.step.numpy()),
            epoch=int(self.epoch.numpy()),
            state=read_state(self.root),
        )

    def save(self, state: dict[str, Any]) -> str:
        """Checkpoint at the current step; the chief also writes ``state`` beside it."""
        path: str = self.manager.save(checkpoint_number=int(self.step.numpy()))
        if self.is_chief:
            write_state(self.root, state)
        return path

    def close(self) -> None:
        """Delete a non-chief worker's throw-away checkpoints."""
        if not self.is_chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)
