"""The train/val split rule: by scene, from a hash of (seed, scene id). Pure.

sha256 → a number in [0, 1); ``< val_fraction`` means val. It never uses Python's ``hash()``
(salted per process) and does not depend on file order or workers, so a scene always lands in
the same split for a seed.

Small datasets: when 0 < val_fraction < 1 and that rule gives no val scene among ≥ 2 paired
scenes, the scene with the lowest score goes to val; when it gives no train scene, the one with
the highest score goes to train (so a single scene always trains). That fallback looks at the
paired ids only (before decoding), so it stays a pure function of the ids and the seed: a
:class:`SplitPlan` holds the little it needs to know about the whole dataset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.core.records import SPLITS

TRAIN, VAL = SPLITS


@dataclass(frozen=True)
class SplitPlan:
    """The little the split rule needs to know about the whole dataset (see the module doc)."""

    seed: int
    val_fraction: float
    scenes: int = 0
    hashed_val: int = 0  # scenes whose score alone puts them in val
    lowest: str = ""  # id with the lowest score: val of last resort
    highest: str = ""  # id with the highest score: train of last resort


def split_score(scene_id: str, seed: int) -> float:
    """A stable number in [0, 1) per (seed, scene id): sha256, never the salted ``hash()``."""
    digest = hashlib.sha256(f"{seed}:{scene_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def plan_splits(scene_ids: Iterable[str], seed: int, val_fraction: float) -> SplitPlan:
    """The :class:`SplitPlan` of a whole list of paired scene ids (what the Beam combiner
    computes in pieces; tests and tools without Beam call this)."""
    scores = [(split_score(scene_id, seed), scene_id) for scene_id in scene_ids]
    if not scores:
        return SplitPlan(seed, val_fraction)
    return SplitPlan(
        seed,
        val_fraction,
        scenes=len(scores),
        hashed_val=sum(score < val_fraction for score, _ in scores),
        lowest=min(scores)[1],
        highest=max(scores)[1],
    )


def assign_split(scene_id: str, plan: SplitPlan) -> str:
    """train or val for a scene: the hash rule plus the small-dataset fallback (module doc)."""
    hashed = VAL if split_score(scene_id, plan.seed) < plan.val_fraction else TRAIN
    if 0.0 < plan.val_fraction < 1.0:
        if plan.hashed_val == 0 and plan.scenes >= 2 and scene_id == plan.lowest:
            return VAL
        if plan.hashed_val == plan.scenes and scene_id == plan.highest:
            return TRAIN
    return hashed
