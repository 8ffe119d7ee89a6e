"""Checkpoint and resume state of a training run: what a killed run needs to go on exactly.

A run's position is one ``tf.train.Checkpoint`` (model weights, optimizer state such as Adam's
moments and the loss scale, the global step and the epoch counter) written by a
``tf.train.CheckpointManager`` under ``OUTPUT/checkpoints`` (``TrainConfig.checkpoint_root``),
plus ``train_state.json`` beside it for what TensorFlow does not checkpoint (the epoch history
and the steps earlier runs resumed from). :func:`epoch_position` turns the restored step and
epoch into the number of batches of the interrupted epoch already trained on, which the loop
skips (the same batches with ``--deterministic``).

**Best weights.** The loop publishes the epoch with the best val mIoU, not the last: after an
epoch that improves, :meth:`RunCheckpoints.save_best` writes the model's weights to
``best-epoch-<N>`` beside the checkpoints, and the state records ``best`` (epoch, score,
weights path) *before* the run's checkpoint is written, so a kill at any moment leaves a state
whose best weights exist. Older ``best-epoch-*`` files are deleted only after that.

**Resume only into the same run.** The state records the data fingerprint (dataset version +
every shard's checksum, ``models.train.data_check``) and the config fingerprint (the options
that change the weights, ``models.train.config.config_fingerprint_parts``), written before the
first checkpoint. :func:`check_resume` refuses a restore whose fingerprints differ, naming
what differs and ``--fresh`` (which deletes the old checkpoints first): training into an old
model folder with other data must never "resume" an unrelated run.

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
BEST_PREFIX = "best-epoch-"
FRESH_FLAG = "--fresh"


class ResumeRefusedError(ValueError):
    """The checkpoint under OUTPUT belongs to another run (other data or other options)."""


def check_resume(
    state: dict[str, Any],
    *,
    checkpoint: str,
    data_fingerprint: str,
    data_parts: dict[str, Any],
    config_fingerprint: str,
    config_parts: dict[str, Any],
) -> None:
    """Refuse (ResumeRefusedError) unless the state's fingerprints equal this run's."""
    fresh = f"pass {FRESH_FLAG} to discard it and start over, or train into a new --output"
    if "data_fingerprint" not in state or "config_fingerprint" not in state:
        raise ResumeRefusedError(
            f"checkpoint {checkpoint} records no data/config fingerprint (written by an older "
            f"version, or its state file is missing), so it cannot be resumed safely; {fresh}"
        )
    problems = []
    if state["data_fingerprint"] != data_fingerprint:
        old = state.get("data", {})
        problems.append(
            f"the data differs (checkpoint: version {old.get('version')!r}, "
            f"{_shard_total(old)} records; now: version {data_parts.get('version')!r}, "
            f"{_shard_total(data_parts)} records)"
        )
    if state["config_fingerprint"] != config_fingerprint:
        old_config = state.get("config", {})
        changed = sorted(
            k
            for k in set(old_config) | set(config_parts)
            if old_config.get(k) != config_parts.get(k)
        )
        detail = ", ".join(f"{k}: {old_config.get(k)!r} → {config_parts.get(k)!r}" for k in changed)
        problems.append(f"the training options differ ({detail or 'unknown fields'})")
    if problems:
        raise ResumeRefusedError(
            f"refusing to resume from {checkpoint}: {'; '.join(problems)}; {fresh}"
        )


def _shard_total(parts: dict[str, Any]) -> int:
    return sum(int(s[1]) for shards in parts.get("shards", {}).values() for s in shards)


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
        fresh: bool = False,
    ) -> None:
        import tensorflow as tf

        self.root = checkpoint_root
        self.is_chief = is_chief
        if fresh and is_chief and tf.io.gfile.exists(checkpoint_root):
            tf.io.gfile.rmtree(checkpoint_root)  # --fresh: the old run's state goes first
        self.model = model
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
        """Checkpoint at the current step; the chief writes ``state`` beside it first."""
        if self.is_chief:  # state first: what it names (best weights) already exists
            write_state(self.root, state)
        path: str = self.manager.save(checkpoint_number=int(self.step.numpy()))
        return path

    def write_state(self, state: dict[str, Any]) -> None:
        """Write the side state alone (the chief), e.g. the fingerprints before any checkpoint."""
        if self.is_chief:
            write_state(self.root, state)

    def save_best(self, epoch: int) -> str:
        """Write the model's weights as the best so far (epoch ``epoch``); returns the path."""
        import tensorflow as tf

        tf.io.gfile.makedirs(self.write_dir)
        path: str = tf.train.Checkpoint(model=self.model).write(
            f"{self.write_dir.rstrip('/')}/{BEST_PREFIX}{epoch}"
        )
        return path

    def restore_best(self, path: str) -> None:
        """Load the best weights written by :meth:`save_best` into the model."""
        import tensorflow as tf

        tf.train.Checkpoint(model=self.model).read(path).assert_existing_objects_matched()

    def prune_best(self, keep: str) -> None:
        """Delete ``best-epoch-*`` files other than ``keep``'s (after the state points at it)."""
        import tensorflow as tf

        for name in tf.io.gfile.glob(f"{self.write_dir.rstrip('/')}/{BEST_PREFIX}*"):
            if not name.startswith(f"{keep}."):
                tf.io.gfile.remove(name)

    def close(self) -> None:
        """Delete a non-chief worker's throw-away checkpoints."""
        if not self.is_chief:
            shutil.rmtree(self.write_dir, ignore_errors=True)
