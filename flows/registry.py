"""The promotion registry: one pointer file that says which model inference uses.

``<root>/models/promoted.json`` names the promoted model (architecture, version, URI, the score
it won with, and the model it replaced). Inference reads only this pointer, so switching models
is one small atomic write (``storage.write_text``: rename locally, object finalize on GCS), and
readers see the old pointer or the new one, never half of either.

A candidate replaces the promoted model only when its validation mIoU is strictly higher. Train
flows compare on equal footing where they can: they re-evaluate the promoted model on the same
validation scenes and pass that as ``current_score`` (the pointer's stored score was measured on
whatever validation set existed when it was promoted). The read-compare-write is not a
transaction, so the ``train`` deployment runs with a concurrency limit of 1.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from flows.layout import Layout, model_version
from pipelines.io import storage

SCORE_KEY = "val_miou"
REQUIRED_KEYS: tuple[str, ...] = ("arch", "version", "model_uri", SCORE_KEY)


def read_promoted(root: str) -> dict[str, Any] | None:
    """The promoted model's pointer, or ``None`` before anything was ever promoted."""
    uri = Layout(root).promoted_pointer
    if not storage.exists(uri):
        return None
    return json.loads(storage.read_text(uri))


def _score(candidate: dict[str, Any]) -> float:
    missing = [key for key in REQUIRED_KEYS if candidate.get(key) in (None, "")]
    if missing:
        raise ValueError(f"candidate model lacks {', '.join(missing)}: {candidate!r}")
    score = float(candidate[SCORE_KEY])
    if not math.isfinite(score):
        raise ValueError(f"candidate {candidate['arch']} has a non-finite {SCORE_KEY}: {score}")
    return score


def is_better(candidate_score: float, current_score: float | None) -> bool:
    """Strictly better wins; the first model ever wins by default."""
    return current_score is None or candidate_score > current_score


def promote_if_better(
    root: str, candidate_metadata: dict[str, Any], *, current_score: float | None = None
) -> bool:
    """Point ``models/promoted.json`` at the candidate if it beats the promoted model.

    ``candidate_metadata`` needs ``arch``, ``version``, ``model_uri`` and ``val_miou``; other
    keys (``evaluated_on``, ``per_class_iou``…) are kept in the pointer for people to read.
    ``current_score`` overrides the promoted model's stored score (see the module docstring).
    Returns whether the candidate was promoted.
    """
    score = _score(candidate_metadata)
    current = read_promoted(root)
    if current is not None and current_score is None:
        current_score = float(current[SCORE_KEY])
    if current is None:
        current_score = None
    if not is_better(score, current_score):
        return False
    pointer = {
        **{k: v for k, v in candidate_metadata.items() if k != "previous"},
        SCORE_KEY: score,
        "model_version": model_version(candidate_metadata["arch"], candidate_metadata["version"]),
        "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "previous": None
        if current is None
        else {
            "arch": current["arch"],
            "version": current["version"],
            "model_uri": current["model_uri"],
            SCORE_KEY: current_score,
        },
    }
    storage.write_text(Layout(root).promoted_pointer, json.dumps(pointer, indent=2, default=str))
    return True
