"""Which epoch's model to publish, and when to stop: the best validation mIoU, not the last.

Pure (no TensorFlow): the loop asks :func:`best_epoch` after every validation and keeps that
epoch's weights aside (``models.train.checkpoints``); :func:`should_stop` is early stopping.
An epoch without a val mIoU (no val split, or no scored pixel) never becomes the best; when no
epoch has one, the last epoch is published (there is nothing better to choose by).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

SELECTION_METRIC = "val_miou"


def _score(entry: dict[str, Any]) -> float | None:
    value = entry.get(SELECTION_METRIC)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def best_epoch(history: Sequence[dict[str, Any]]) -> tuple[int, float] | None:
    """``(epoch, val mIoU)`` of the best epoch so far (the earliest on a tie), or None."""
    best: tuple[int, float] | None = None
    for entry in history:
        score = _score(entry)
        if score is not None and (best is None or score > best[1]):
            best = (int(entry["epoch"]), score)
    return best


def epochs_without_improvement(history: Sequence[dict[str, Any]]) -> int:
    """Epochs after the best one (all of them when none scored)."""
    best = best_epoch(history)
    last = int(history[-1]["epoch"]) if history else 0
    return last - (best[0] if best else 0)


def should_stop(history: Sequence[dict[str, Any]], patience: int | None) -> bool:
    """Early stopping: ``patience`` epochs in a row without a better val mIoU (never when no
    epoch has a score: without validation there is nothing to stop on)."""
    if patience is None or best_epoch(history) is None:
        return False
    return epochs_without_improvement(history) >= patience


def improves(entry: dict[str, Any], best: dict[str, Any] | None) -> bool:
    """Whether ``entry``'s val mIoU beats the recorded ``best`` (``{"epoch", "val_miou", …}``)."""
    score = _score(entry)
    if score is None:
        return False
    return best is None or best.get(SELECTION_METRIC) is None or score > best[SELECTION_METRIC]
