"""Best-epoch selection and early stopping on crafted metric histories."""

from __future__ import annotations

import math

from models.train.selection import best_epoch, epochs_without_improvement, improves, should_stop


def history(*scores: float | None) -> list[dict]:
    return [{"epoch": i + 1, "val_miou": s, "val_dice": 0.9} for i, s in enumerate(scores)]


def test_best_is_the_highest_val_miou_not_the_last() -> None:
    assert best_epoch(history(0.2, 0.5, 0.45, 0.3)) == (2, 0.5)


def test_ties_keep_the_earliest_and_missing_scores_never_win() -> None:
    assert best_epoch(history(0.4, 0.4, None, math.nan)) == (1, 0.4)
    assert best_epoch(history(None, None)) is None
    assert best_epoch([]) is None


def test_early_stopping_counts_epochs_since_the_best() -> None:
    crafted = history(0.1, 0.3, 0.29, 0.28)
    assert epochs_without_improvement(crafted) == 2
    assert not should_stop(crafted, 3)
    assert should_stop(crafted, 2)
    assert not should_stop(crafted, None)
    assert not should_stop(history(0.1, 0.2, 0.3), 1)
    assert not should_stop(history(None, None, None), 1)  # no validation: nothing to stop on


def test_improves_compares_with_the_recorded_best() -> None:
    assert improves({"val_miou": 0.5}, None)
    assert improves({"val_miou": 0.5}, {"epoch": 1, "val_miou": 0.4})
    assert not improves({"val_miou": 0.4}, {"epoch": 1, "val_miou": 0.4})
    assert not improves({"val_miou": None}, None)
