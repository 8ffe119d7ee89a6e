"""``deterministic=True``: two runs from the same seed and data are bit-identical, even while
another thread draws from Python's global ``random`` (as Prefect's client or Beam may), and
the process-wide switches it turns on are put back afterwards."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from models.serving import load_model
from models.train.config import TrainConfig
from models.train.loop import train


@pytest.fixture(scope="module")
def records_uri(make_records: Callable[..., str]) -> str:
    """4 scenes of 256 px cut into 128 px patches: enough varied batches for rounding to show."""
    return make_records(scenes=4, size=256, patch=128, seed=3, val_fraction=0.25)


@pytest.fixture
def busy_neighbour() -> Iterator[None]:
    """A thread drawing from the global ``random`` all along, like a service loop would."""
    stop = threading.Event()

    def draw() -> None:
        while not stop.wait(0.0005):
            random.random()

    thread = threading.Thread(target=draw, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


def _run(records: str, output: Path) -> tuple[list[dict], list[np.ndarray]]:
    # Wide enough layers and batches that the step's kernels are split across threads.
    config = TrainConfig(
        data=records,
        output=str(output),
        arch="unet",
        epochs=2,
        steps_per_epoch=6,
        batch_size=8,
        base_filters=16,
        color_jitter=0.1,
        deterministic=True,
        seed=0,
    )
    train(config)
    history = json.loads((output / "metadata.json").read_text())["history"]
    return history, [np.asarray(w) for w in load_model(str(output / "model.keras")).weights]


@pytest.mark.slow
@pytest.mark.usefixtures("busy_neighbour")
def test_two_deterministic_runs_are_bit_identical(records_uri: str, tmp_path: Path) -> None:
    assert not tf_config.is_op_determinism_enabled()
    first_history, first_weights = _run(records_uri, tmp_path / "a")
    second_history, second_weights = _run(records_uri, tmp_path / "b")
    keys = ("train_loss", "train_loss_last_step", "val_loss", "val_miou")
    assert [[h[k] for k in keys] for h in first_history] == [
        [h[k] for k in keys] for h in second_history
    ]
    assert len(first_weights) == len(second_weights) > 0
    for a, b in zip(first_weights, second_weights, strict=True):
        np.testing.assert_array_equal(a, b)
    # The process-wide switches are this run's only: put back afterwards.
    assert not tf_config.is_op_determinism_enabled()
    assert not tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer")
