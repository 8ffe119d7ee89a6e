"""A model folder resumes only the run that made it: other data or options are refused, naming
what differs and ``--fresh``; ``--fresh`` starts over."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from models.train.checkpoints import ResumeRefusedError
from models.train.config import TrainConfig
from models.train.loop import train


@pytest.fixture(scope="module")
def two_datasets(make_records: Callable[..., str]) -> tuple[str, str]:
    first = make_records(scenes=2, size=128, patch=64, seed=1, val_fraction=0.5)
    second = make_records(scenes=2, size=128, patch=64, seed=7, val_fraction=0.5)
    return first, second


def tiny(data: str, output: Path, **overrides) -> TrainConfig:
    options = {
        "data": data,
        "output": str(output),
        "arch": "unet",
        "epochs": 1,
        "steps_per_epoch": 2,
        "batch_size": 2,
        "base_filters": 4,
        "deterministic": True,
        "log_every": 1,
    }
    return TrainConfig(**{**options, **overrides})


def test_other_data_or_options_are_refused_and_fresh_starts_over(
    two_datasets: tuple[str, str], tmp_path: Path
) -> None:
    first, second = two_datasets
    output = tmp_path / "model"
    metadata = train(tiny(first, output))
    assert metadata["steps"] == 2 and metadata["best_epoch"] == 1

    with pytest.raises(ResumeRefusedError, match=r"the data differs.*--fresh"):
        train(tiny(second, output))
    with pytest.raises(ResumeRefusedError, match=r"learning_rate: 0.001 → 0.01.*--fresh"):
        train(tiny(first, output, learning_rate=0.01))
    # Neither refusal touched what the first run published.
    assert json.loads((output / "metadata.json").read_text())["data"] == first

    # Same data and options: a finished run "resumes" with nothing left to do.
    again = train(tiny(first, output))
    assert again["steps"] == 2 and again["resumed_from_step"] == [2]

    fresh = train(tiny(second, output, fresh=True))
    assert fresh["steps"] == 2 and fresh["resumed_from_step"] == []
    assert fresh["data"] == second
    assert fresh["data_fingerprint"] != metadata["data_fingerprint"]


def test_result_neutral_options_do_not_block_a_resume(
    two_datasets: tuple[str, str], tmp_path: Path
) -> None:
    first, _ = two_datasets
    output = tmp_path / "model"
    train(tiny(first, output))
    more = train(tiny(first, output, epochs=2, log_every=5, checkpoint_every=50))
    assert more["resumed_from_step"] == [2] and more["steps"] == 4
    assert [h["epoch"] for h in more["history"]] == [1, 2]
