"""A training budget in minutes: how many steps fit, and when to stop.

``--max-minutes N`` makes the run's length a fact of the machine it runs on: the trainer
measures what a step, a validation and a batch-norm recalibration cost here (:class:`Probe`,
timed on the real model and data, then undone), and :func:`plan_budget` turns the minutes left
into steps per epoch, so the learning-rate schedule (``models.train.schedule``) is planned for
the steps that fit: a budgeted run warms up, holds and anneals like any other, instead of being
cut off at a high rate. ``epochs`` is the number of validations (best-epoch choices) inside the
budget. Timing is noisy, so the plan is only a plan: :meth:`BudgetPlan.should_stop` ends an
epoch early once a next step would overrun the time kept back for the last validation and the
save, and the run then validates, keeps its best epoch and publishes within the budget.

Pure arithmetic over measured seconds (no TensorFlow), so it is tested exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

# Seconds kept for writing a checkpoint (each epoch) and the final model.keras + metadata.
# Not measured by the probe (that would write files): measured once on the 2-core machine for a
# base-16 U-Net (checkpoint 0.3 s, final save 1.1 s) and rounded up generously.
CHECKPOINT_S = 2.0
FINAL_SAVE_S = 5.0


@dataclass(frozen=True)
class Probe:
    """Seconds measured before training: one step, one whole validation, one recalibration."""

    step_s: float
    validation_s: float
    recalibration_s: float


@dataclass(frozen=True)
class BudgetPlan:
    """The steps that fit in the budget, and the deadline that guards it."""

    max_minutes: float
    steps_per_epoch: int
    epochs: int
    step_s: float
    epoch_overhead_s: float
    reserve_s: float
    planned_at_s: float  # seconds of the budget already spent when the plan was made

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs

    def deadline(self, started: float, epoch_overhead_s: float | None = None) -> float:
        """The monotonic time after which no step may start (``started``: the run's start).

        ``epoch_overhead_s``: a validation + recalibration + checkpoint as measured since the
        plan (when slower than the probe's), so the time kept back follows the machine.
        """
        overhead = max(self.epoch_overhead_s, epoch_overhead_s or 0.0)
        return started + self.max_minutes * 60.0 - overhead - FINAL_SAVE_S

    def should_stop(
        self,
        started: float,
        now: float | None = None,
        *,
        step_s: float | None = None,
        epoch_overhead_s: float | None = None,
    ) -> bool:
        """Whether one more step would eat into the time kept for validating and saving.

        ``step_s`` / ``epoch_overhead_s``: what steps and epoch ends cost lately; the larger of
        them and the probe's counts (a machine that got busier ends the run earlier, in time).
        """
        now = time.monotonic() if now is None else now
        step = max(self.step_s, step_s or 0.0)
        return now + step > self.deadline(started, epoch_overhead_s)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_steps": self.total_steps}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BudgetPlan:
        fields = {k: v for k, v in data.items() if k != "total_steps"}
        return cls(**fields)


def plan_budget(max_minutes: float, probe: Probe, *, epochs: int, spent_s: float) -> BudgetPlan:
    """Steps per epoch so that ``epochs`` epochs, their validations and the save fit.

    ``spent_s`` is the budget already used (start-up, the data check, the build, the probe).
    At least one step per epoch, even when the budget is too small for it (the guard then ends
    the run after its first step).
    """
    if max_minutes <= 0 or epochs < 1:
        raise ValueError(f"need a positive budget and epochs >= 1, got {max_minutes}, {epochs}")
    epoch_overhead = probe.validation_s + probe.recalibration_s + CHECKPOINT_S
    reserve = epoch_overhead + FINAL_SAVE_S
    available = max_minutes * 60.0 - spent_s - epochs * epoch_overhead - FINAL_SAVE_S
    total = math.floor(max(available, 0.0) / max(probe.step_s, 1e-6))
    return BudgetPlan(
        max_minutes=max_minutes,
        steps_per_epoch=max(1, total // epochs),
        epochs=epochs,
        step_s=probe.step_s,
        epoch_overhead_s=epoch_overhead,
        reserve_s=reserve,
        planned_at_s=spent_s,
    )
