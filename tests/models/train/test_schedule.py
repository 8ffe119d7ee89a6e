"""The learning-rate schedule planned from total steps, and the Keras schedule equal to it."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from models.train.schedule import SchedulePlan, WarmupDecay, learning_rate_at

PEAK = 1e-3
# 110 steps, warm-up 10/110 of them, decay over all the rest: warm-up 0..9, decay 10..109.
PLAN = SchedulePlan.of(110, 1 / 11, 1.0)


def test_plan_is_fractions_of_the_total() -> None:
    assert SchedulePlan(total_steps=110, warmup_steps=10, decay_start=10, decay_steps=100) == PLAN
    # warm-up 5 % of 1000, then hold the peak, then decay over the last 20 % of the other 950
    wsd = SchedulePlan.of(1000, 0.05, 0.2)
    assert (wsd.warmup_steps, wsd.decay_start, wsd.decay_steps) == (50, 810, 190)
    # the same fractions scale with the run: a ten times longer run has ten times the warm-up
    assert SchedulePlan.of(10_000, 0.05, 0.2).warmup_steps == 500
    # a one-step run never warms up past its only step
    assert SchedulePlan.of(1, 0.5, 1.0).warmup_steps == 0


@pytest.mark.parametrize("bad", [(0, 0.1, 1.0), (10, 1.0, 1.0), (10, 0.1, 1.5), (10, -0.1, 1.0)])
def test_plan_refuses_bad_values(bad: tuple[int, float, float]) -> None:
    with pytest.raises(ValueError):
        SchedulePlan.of(*bad)


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [
        ("constant", 0, PEAK / 10),  # warm-up: (0 + 1) / 10 of the peak
        ("constant", 9, PEAK),  # last warm-up step reaches the peak
        ("constant", 500, PEAK),
        ("cosine", 10, PEAK),  # decay starts at the peak
        ("cosine", 60, 1e-5 + (PEAK - 1e-5) * 0.5),  # half way: the mean of peak and floor
        ("cosine", 110, 1e-5),  # the end: peak × min_lr_fraction
        ("cosine", 1000, 1e-5),  # and stays there
        ("poly", 60, 1e-5 + (PEAK - 1e-5) * 0.5**0.9),
        ("poly", 110, 1e-5),
    ],
)
def test_values_at_chosen_steps(schedule: str, step: int, expected: float) -> None:
    got = learning_rate_at(step, peak=PEAK, schedule=schedule, plan=PLAN, min_lr_fraction=0.01)
    assert got == pytest.approx(expected, rel=1e-9)


def test_hold_then_decay() -> None:
    plan = SchedulePlan.of(100, 0.1, 0.5)  # warm-up 10, hold to 55, decay over 45
    rates = [learning_rate_at(s, peak=PEAK, schedule="cosine", plan=plan) for s in range(100)]
    assert rates[10:55] == [PEAK] * 45
    assert all(a > b for a, b in itertools.pairwise(rates[55:]))
    assert rates[-1] == pytest.approx(
        1e-5 + (PEAK - 1e-5) * 0.5 * (1 + math.cos(math.pi * 44 / 45))
    )


@pytest.mark.parametrize("schedule", ["constant", "cosine", "poly"])
@pytest.mark.parametrize("fractions", [(0.0, 1.0), (0.1, 1.0), (0.05, 0.3)])
def test_keras_schedule_equals_the_definition(
    schedule: str, fractions: tuple[float, float]
) -> None:
    plan = SchedulePlan.of(60, *fractions)
    keras_schedule = WarmupDecay(peak=PEAK, schedule=schedule, plan=plan, min_lr_fraction=0.05)
    for step in [0, 1, 2, 3, 5, 17, 30, 42, 59, 60, 80]:
        want = learning_rate_at(step, peak=PEAK, schedule=schedule, plan=plan, min_lr_fraction=0.05)
        assert float(keras_schedule(np.int64(step))) == pytest.approx(want, rel=1e-5, abs=1e-12)


def test_a_traced_step_follows_a_new_plan() -> None:
    """A budgeted run sets its plan after the train step is traced: the trace must read it."""
    import tensorflow as tf

    schedule = WarmupDecay(peak=PEAK, schedule="cosine", plan=SchedulePlan.of(1000, 0.0, 1.0))
    rate = tf.function(lambda step: schedule(step))
    assert float(rate(tf.constant(100, tf.int64))) == pytest.approx(
        learning_rate_at(100, peak=PEAK, schedule="cosine", plan=SchedulePlan.of(1000, 0.0, 1.0)),
        rel=1e-5,
    )
    short = SchedulePlan.of(100, 0.1, 1.0)
    schedule.set_plan(short)
    assert float(rate(tf.constant(100, tf.int64))) == pytest.approx(1e-5, rel=1e-5)
    assert float(rate(tf.constant(4, tf.int64))) == pytest.approx(PEAK * 5 / 10, rel=1e-5)
    assert schedule.get_config()["total_steps"] == 100


def test_unknown_schedule_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        WarmupDecay(peak=PEAK, schedule="step", plan=PLAN)
