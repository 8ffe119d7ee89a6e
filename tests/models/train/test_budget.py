"""A training budget in minutes: the steps that fit, and the guard that ends a run in time."""

from __future__ import annotations

import pytest

from models.train.budget import CHECKPOINT_S, FINAL_SAVE_S, BudgetPlan, Probe, plan_budget

PROBE = Probe(step_s=0.5, validation_s=10.0, recalibration_s=4.0)


def test_steps_fill_what_the_overheads_leave() -> None:
    plan = plan_budget(10, PROBE, epochs=4, spent_s=30.0)
    overhead = 10.0 + 4.0 + CHECKPOINT_S
    available = 600 - 30 - 4 * overhead - FINAL_SAVE_S
    assert plan.epoch_overhead_s == overhead
    assert plan.steps_per_epoch == int(available / 0.5) // 4
    assert plan.total_steps == 4 * plan.steps_per_epoch
    # the steps, validations and saves of the plan fit in the budget
    used = 30 + plan.total_steps * 0.5 + 4 * overhead + FINAL_SAVE_S
    assert used <= 600 < used + 4 * 0.5 + 0.5


def test_twice_the_budget_plans_more_than_twice_the_steps() -> None:
    """Overheads are fixed: doubling the minutes more than doubles the training steps."""
    one, two = (plan_budget(m, PROBE, epochs=2, spent_s=20.0) for m in (5, 10))
    assert two.total_steps > 2 * one.total_steps


def test_a_budget_too_small_still_plans_one_step_an_epoch() -> None:
    plan = plan_budget(0.1, PROBE, epochs=3, spent_s=30.0)
    assert plan.steps_per_epoch == 1
    assert plan.should_stop(started=0.0, now=0.0)  # and the guard ends it at once


def test_guard_keeps_back_the_last_validation_and_the_save() -> None:
    plan = plan_budget(10, PROBE, epochs=2, spent_s=0.0)
    deadline = 600 - (10.0 + 4.0 + CHECKPOINT_S + FINAL_SAVE_S)
    assert plan.deadline(started=100.0) == pytest.approx(100.0 + deadline)
    assert not plan.should_stop(started=100.0, now=100.0 + deadline - 0.6)
    assert plan.should_stop(started=100.0, now=100.0 + deadline - 0.4)  # a step would overrun


def test_plan_round_trips_through_the_run_state() -> None:
    plan = plan_budget(7.5, PROBE, epochs=3, spent_s=12.5)
    data = plan.to_dict()
    assert data["total_steps"] == plan.total_steps
    assert BudgetPlan.from_dict(data) == plan


@pytest.mark.parametrize(("minutes", "epochs"), [(0, 1), (-1, 1), (5, 0)])
def test_bad_budgets_are_refused(minutes: float, epochs: int) -> None:
    with pytest.raises(ValueError):
        plan_budget(minutes, PROBE, epochs=epochs, spent_s=0.0)


def test_a_machine_that_got_busier_stops_earlier() -> None:
    """Steps or epoch ends slower than the probe measured move the last start earlier."""
    plan = plan_budget(10, PROBE, epochs=2, spent_s=0.0)
    now = plan.deadline(started=0.0) - 1.0  # a probe-speed step (0.5 s) still fits
    assert not plan.should_stop(started=0.0, now=now)
    assert plan.should_stop(started=0.0, now=now, step_s=1.5)
    assert plan.should_stop(started=0.0, now=now, epoch_overhead_s=plan.epoch_overhead_s + 1.0)
    assert not plan.should_stop(started=0.0, now=now, step_s=0.1)  # faster changes nothing
