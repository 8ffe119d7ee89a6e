"""Checkpoint and resume state: positions in an epoch, the side state file, save → restore."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np
import pytest

from models.train.checkpoints import (
    STATE_FILE,
    RunCheckpoints,
    checkpoint_write_dir,
    epoch_position,
    read_state,
    write_state,
)


def test_epoch_position() -> None:
    # Resume positions: a checkpoint at global step 13 with 5 steps per epoch in epoch 2 (0-based).
    assert epoch_position(13, 2, 5) == 3
    assert epoch_position(10, 2, 5) == 0
    assert epoch_position(99, 2, 5) == 5


def test_state_file_round_trip(tmp_path: Path) -> None:
    folder = str(tmp_path / "ckpt")
    assert read_state(folder) == {}
    state = {"history": [{"epoch": 1, "train_loss": 0.5}], "resumed_from_step": [4]}
    write_state(folder, state)
    assert read_state(folder) == state
    assert sorted(os.listdir(folder)) == [STATE_FILE]  # the temporary file is gone


def test_only_the_chief_writes_under_the_root(tmp_path: Path) -> None:
    assert checkpoint_write_dir(str(tmp_path), is_chief=True) == str(tmp_path)
    other = checkpoint_write_dir(str(tmp_path), is_chief=False)
    assert other != str(tmp_path) and os.path.isdir(other)
    os.rmdir(other)


def _model(width: int) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width)])
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_save_and_restore_the_weights_optimizer_and_counters(tmp_path: Path) -> None:
    root = str(tmp_path / "checkpoints")
    model, optimizer = _model(3)
    checkpoints = RunCheckpoints(model, optimizer, checkpoint_root=root, is_chief=True, keep=2)
    assert checkpoints.restore_latest() is None
    gradients = [np.ones(v.shape, "float32") for v in model.trainable_variables]
    optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
    checkpoints.step.assign(7)
    checkpoints.epoch.assign(1)
    path = checkpoints.save({"history": [{"epoch": 1}], "resumed_from_step": []})
    assert path.endswith("ckpt-7")
    saved = [w.copy() for w in model.get_weights()]

    fresh, fresh_optimizer = _model(3)
    again = RunCheckpoints(fresh, fresh_optimizer, checkpoint_root=root, is_chief=True, keep=2)
    restored = again.restore_latest()
    assert restored is not None
    assert (restored.checkpoint, restored.step, restored.epoch) == (path, 7, 1)
    assert restored.state == {"history": [{"epoch": 1}], "resumed_from_step": []}
    assert int(fresh_optimizer.iterations.numpy()) == 1
    for got, want in zip(fresh.get_weights(), saved, strict=True):
        np.testing.assert_array_equal(got, want)

    other, other_optimizer = _model(5)
    mismatched = RunCheckpoints(other, other_optimizer, checkpoint_root=root, is_chief=True, keep=2)
    with pytest.raises(ValueError, match="does not match this model"):
        mismatched.restore_latest()


def test_a_worker_s_checkpoints_are_thrown_away(tmp_path: Path) -> None:
    model, optimizer = _model(2)
    root = str(tmp_path / "checkpoints")
    worker = RunCheckpoints(model, optimizer, checkpoint_root=root, is_chief=False, keep=3)
    worker.save({"history": []})
    assert os.listdir(worker.write_dir) and not os.path.exists(root)
    worker.close()
    assert not os.path.exists(worker.write_dir)
