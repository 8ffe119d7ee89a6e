"""The learning-rate schedule at chosen steps, and the Keras schedule equal to the definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.train.schedule import WarmupDecay, learning_rate_at

PEAK = 1e-3


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 0, PEAK / 10),  # warm-up: (0 + 1) / 10 of the peak
        ("constant", 9, PEAK),  # last warm-up step reaches the peak
        ("constant", 500, PEAK),
        ("cosine", 10, PEAK),  # decay starts at the peak
        ("cosine", 55, 1e-5 + (PEAK - 1e-5) * 0.5),  # half way: the mean of peak and floor
        ("cosine", 100, 1e-5),  # the end: peak × min_lr_fraction
        ("cosine", 1000, 1e-5),  # and stays there
        ("poly", 55, 1e-5 + (PEAK - 1e-5) * 0.5**0.9),
        ("poly", 100, 1e-5),
    ],
)
def test_values_at_chosen_steps(schedule: str, step: int, expected: float) -> None:
    got = learning_rate_at(
        step, peak=PEAK, schedule=schedule, warmup_steps=10, total_steps=100, min_lr_fraction=0.01
    )
    assert got == pytest.approx(expected, rel=1e-9)


def test_no_warmup_starts_at_the_peak() -> None:
    assert learning_rate_at(0, peak=PEAK, schedule="cosine", warmup_steps=0, total_steps=50) == (
        pytest.approx(PEAK)
    )


@pytest.mark.parametrize("schedule", ["constant", "cosine", "poly"])
@pytest.mark.parametrize("warmup", [0, 7])
def test_keras_schedule_is_the_definition(schedule: str, warmup: int) -> None:
    keras_schedule = WarmupDecay(
        peak=PEAK, schedule=schedule, warmup_steps=warmup, total_steps=60, min_lr_fraction=0.05
    )
    for step in (0, 1, 6, 7, 8, 30, 59, 60, 61, 200):
        expected = learning_rate_at(
            step,
            peak=PEAK,
            schedule=schedule,
            warmup_steps=warmup,
            total_steps=60,
            min_lr_fraction=0.05,
        )
        got = float(np.asarray(keras_schedule(step)))
        assert math.isclose(got, expected, rel_tol=1e-5), (step, got, expected)


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        WarmupDecay(peak=PEAK, schedule="step", warmup_steps=0, total_steps=10)
