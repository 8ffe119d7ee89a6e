"""The learning-rate schedule: linear warm-up, then constant, cosine or polynomial decay.

Per optimizer step (``optimizer.iterations``, which the checkpoint restores, so a resumed run
continues on the same curve)::

    warm-up  (step < W):  lr = peak × (step + 1) / W
    constant:             lr = peak
    cosine:               lr = floor + (peak − floor) × ½ (1 + cos(π t))
    poly:                 lr = floor + (peak − floor) × (1 − t) ** 0.9
    with t = min((step − W) / max(T − W, 1), 1), floor = peak × min_lr_fraction

Warm-up keeps the first updates small while Adam's moment estimates and the batch-norm
statistics are still noise (large early steps are what makes segmentation nets diverge or
collapse onto the majority class); the decay then anneals into a minimum. ``poly`` with power
0.9 is the DeepLab schedule; cosine is the common default. :func:`learning_rate_at` is the
definition in plain Python (tests, README numbers); :class:`WarmupDecay` the same formula in
Keras ops for the optimizer.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

POLY_POWER = 0.9


def learning_rate_at(
    step: int,
    *,
    peak: float,
    schedule: str,
    warmup_steps: int,
    total_steps: int,
    min_lr_fraction: float = 0.01,
) -> float:
    """The learning rate of optimizer step ``step`` (0-based)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    if schedule == "constant":
        return peak
    floor = peak * min_lr_fraction
    t = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    if schedule == "cosine":
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    if schedule == "poly":
        return floor + (peak - floor) * (1.0 - t) ** POLY_POWER
    raise ValueError(f"unknown schedule {schedule!r}")


class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """:func:`learning_rate_at` as a Keras schedule (same formula, in ``keras.ops``)."""

    def __init__(
        self,
        *,
        peak: float,
        schedule: str,
        warmup_steps: int,
        total_steps: int,
        min_lr_fraction: float = 0.01,
    ) -> None:
        if schedule not in ("constant", "cosine", "poly"):
            raise ValueError(f"unknown schedule {schedule!r}")
        self.peak = float(peak)
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)
        self.min_lr_fraction = float(min_lr_fraction)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        peak = ops.convert_to_tensor(self.peak, "float32")
        floor = peak * self.min_lr_fraction
        warmup = float(max(self.warmup_steps, 1))
        decay_steps = float(max(self.total_steps - self.warmup_steps, 1))
        t = ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.schedule == "constant":
            decayed = peak
        elif self.schedule == "cosine":
            decayed = floor + (peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * t))
        else:
            decayed = floor + (peak - floor) * ops.power(1.0 - t, POLY_POWER)
        if self.warmup_steps <= 0:
            return decayed
        return ops.where(step < self.warmup_steps, peak * (step + 1.0) / warmup, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "schedule": self.schedule,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "min_lr_fraction": self.min_lr_fraction,
        }
