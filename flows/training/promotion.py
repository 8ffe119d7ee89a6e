"""Step 4 of the train flow: the best candidate replaces the promoted model if it beats it.

The comparison and the pointer write are :mod:`flows.registry`'s (strictly better wins; a
promoted model whose file is gone counts as none). This step picks the best candidate by the
evaluation's scores, states what it is compared against (the promoted model re-scored on the
same val scenes when that worked, else its stored score) and records the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flows.layout import model_version
from flows.logs import run_logger
from flows.registry import SCORE_KEY, promote_if_better
from flows.training.candidates import Candidate
from flows.training.evaluation import Evaluation


@dataclass(frozen=True)
class Promotion:
    """The run's decision: which candidate was best, what it was measured against, the outcome."""

    promoted: bool
    candidate: Mapping[str, Any] | None  # the best candidate's pointer fields (None: unscored)
    previous: str | None  # the model version promoted before this run
    baseline_score: float | None  # the score the candidate had to beat

    def to_dict(self) -> dict[str, Any]:
        return {
            "promoted": self.promoted,
            "candidate": None if self.candidate is None else dict(self.candidate),
            "previous": self.previous,
            "baseline_score": self.baseline_score,
        }


def pointer_fields(candidate: Candidate, evaluation: Evaluation, run: str) -> dict[str, Any]:
    """What ``promoted.json`` records for ``candidate`` (:func:`flows.registry.promote_if_better`
    adds the checksum and the time)."""
    scored = evaluation.of(candidate.arch)
    return {
        "arch": candidate.arch,
        "version": run,
        "model_version": model_version(candidate.arch, run),
        "model_uri": candidate.model_uri,
        SCORE_KEY: evaluation.score(candidate),
        "evaluated_on": evaluation.evaluated_on,
        "per_class_iou": None if scored is None else scored.per_class_iou,
        "training_run": run,
    }


def best_candidate(candidates: Sequence[Candidate], evaluation: Evaluation) -> Candidate | None:
    """The candidate with the highest defined score (ties: the first listed)."""
    best: tuple[float, Candidate] | None = None
    for candidate in candidates:
        score = evaluation.score(candidate)
        if score is not None and (best is None or score > best[0]):
            best = (score, candidate)
    return None if best is None else best[1]


def promote(
    root: str,
    run: str,
    candidates: Sequence[Candidate],
    evaluation: Evaluation,
    promoted: Mapping[str, Any] | None,
) -> Promotion:
    """Promote the best candidate if it beats ``promoted`` (the pointer read at the start)."""
    logger = run_logger()
    best = best_candidate(candidates, evaluation)
    fields = None if best is None else pointer_fields(best, evaluation, run)
    done = fields is not None and promote_if_better(root, fields, current_score=evaluation.baseline)
    stored = None if promoted is None else promoted.get(SCORE_KEY)
    promotion = Promotion(
        promoted=done,
        candidate=fields,
        previous=None if promoted is None else promoted.get("model_version"),
        baseline_score=evaluation.baseline if evaluation.baseline is not None else stored,
    )
    if done and fields is not None:
        logger.info("promoted %s (val mIoU %.4f)", fields["model_version"], fields[SCORE_KEY])
    else:
        logger.info("kept the promoted model: %s", promotion.to_dict())
    return promotion
