"""The learning-rate schedule, planned from the run's total steps: warm-up, hold, decay.

A run of ``T`` optimizer steps is cut by fractions of itself, never by a fixed number of epochs
(a one-epoch warm-up is most of a short CPU run and nothing of a long GPU one)::

    W = round(warmup_fraction × T)                  warm-up steps
    D = round(decay_fraction × (T − W))             decay steps, at the end of the run
    warm-up  (step < W):        lr = peak × (step + 1) / W
    hold     (step < T − D):    lr = peak
    decay:   cosine:            lr = floor + (peak − floor) × ½ (1 + cos(π t))
             poly:              lr = floor + (peak − floor) × (1 − t) ** 0.9
             constant:          lr = peak
    with t = min((step − (T − D)) / D, 1), floor = peak × min_lr_fraction

``decay_fraction`` 1 is the classic warm-up + cosine (or DeepLab's poly) over the whole run;
below 1 it is a warm-up/stable/decay schedule, which suits budgeted runs: the rate stays at its
peak while there is time and anneals at the end. Warm-up keeps the first updates small while
Adam's moment estimates and the batch statistics are still noise.

The plan is known only once the run's length is (``--max-minutes`` measures its step time
first), so :class:`WarmupDecay` keeps ``W``, ``T − D`` and ``D`` in variables that
:meth:`WarmupDecay.set_plan` fills in after the train step is traced: the traced step reads
them. :func:`learning_rate_at` is the same formula in plain Python (tests, docs).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import keras
from keras import ops

from models.schedule_options import SCHEDULES

POLY_POWER = 0.9


@dataclass(frozen=True)
class SchedulePlan:
    """Where the phases of a ``total_steps`` run begin and end (steps, 0-based)."""

    total_steps: int
    warmup_steps: int
    decay_start: int
    decay_steps: int

    @classmethod
    def of(cls, total_steps: int, warmup_fraction: float, decay_fraction: float) -> SchedulePlan:
        """The plan of a run of ``total_steps`` (≥ 1) with the given fractions (each in [0, 1])."""
        if total_steps < 1:
            raise ValueError(f"a run needs at least one step, got {total_steps}")
        if not (0 <= warmup_fraction < 1 and 0 <= decay_fraction <= 1):
            raise ValueError(
                f"warmup_fraction must be in [0, 1) and decay_fraction in [0, 1], got "
                f"{warmup_fraction} and {decay_fraction}"
            )
        warmup = min(round(warmup_fraction * total_steps), total_steps - 1)
        decay = round(decay_fraction * (total_steps - warmup))
        return cls(total_steps, warmup, total_steps - decay, decay)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def learning_rate_at(
    step: int, *, peak: float, schedule: str, plan: SchedulePlan, min_lr_fraction: float = 0.01
) -> float:
    """The learning rate of optimizer step ``step`` (0-based)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}")
    if step < plan.warmup_steps:
        return peak * (step + 1) / plan.warmup_steps
    if schedule == "constant" or step < plan.decay_start:
        return peak
    floor = peak * min_lr_fraction
    t = min((step - plan.decay_start) / max(plan.decay_steps, 1), 1.0)
    if schedule == "cosine":
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return floor + (peak - floor) * (1.0 - t) ** POLY_POWER


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """:func:`learning_rate_at` as a Keras schedule, its plan in variables (see the module)."""

    def __init__(
        self, *, peak: float, schedule: str, plan: SchedulePlan, min_lr_fraction: float = 0.01
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}")
        self.peak = float(peak)
        self.schedule = schedule
        self.min_lr_fraction = float(min_lr_fraction)
        self._warmup = keras.Variable(0.0, dtype="float32", trainable=False, name="lr_warmup")
        self._decay_start = keras.Variable(0.0, dtype="float32", trainable=False, name="lr_start")
        self._decay = keras.Variable(1.0, dtype="float32", trainable=False, name="lr_decay")
        self.plan = plan
        self.set_plan(plan)

    def set_plan(self, plan: SchedulePlan) -> None:
        """Follow ``plan`` from the next step on (the traced step reads the variables)."""
        self.plan = plan
        self._warmup.assign(float(plan.warmup_steps))
        self._decay_start.assign(float(plan.decay_start))
        self._decay.assign(float(max(plan.decay_steps, 1)))

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        peak = ops.convert_to_tensor(self.peak, "float32")
        floor = peak * self.min_lr_fraction
        t = ops.clip((step - self._decay_start) / self._decay, 0.0, 1.0)
        if self.schedule == "constant":
            decayed = peak
        elif self.schedule == "cosine":
            decayed = floor + (peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * t))
        else:
            decayed = floor + (peak - floor) * ops.power(1.0 - t, POLY_POWER)
        warming = peak * (step + 1.0) / ops.maximum(self._warmup, 1.0)
        return ops.where(step < self._warmup, warming, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "schedule": self.schedule,
            "min_lr_fraction": self.min_lr_fraction,
            **self.plan.to_dict(),
        }
