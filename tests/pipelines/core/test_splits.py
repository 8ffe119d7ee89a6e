"""The split rule: sha256 of (seed, id), stable, and the small-dataset fallback."""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from pipelines.core.splits import SplitPlan, assign_split, plan_splits, split_score


def _splits(ids: list[str], seed: int, val_fraction: float) -> dict[str, str]:
    plan = plan_splits(ids, seed, val_fraction)
    return {scene_id: assign_split(scene_id, plan) for scene_id in ids}


def test_split_score_is_sha256_of_seed_and_id() -> None:
    digest = hashlib.sha256(b"0:10452").digest()
    assert split_score("10452", 0) == int.from_bytes(digest[:8], "big") / 2.0**64
    assert split_score("10452", 1) != split_score("10452", 0)


def test_split_is_by_hash_and_stable() -> None:
    ids = [str(i) for i in range(400)]
    splits = _splits(ids, seed=3, val_fraction=0.25)
    assert splits == {i: "val" if split_score(i, 3) < 0.25 else "train" for i in ids}
    assert 70 < Counter(splits.values())["val"] < 130
    # The same id lands in the same split whatever else is in the dataset.
    subset = random.Random(0).sample(ids, 50)
    assert _splits(subset, 3, 0.25) == {i: splits[i] for i in subset}
    assert _splits(ids, 4, 0.25) != splits


def test_small_datasets_always_get_a_val_and_a_train_scene() -> None:
    rng = random.Random(1)
    for _ in range(300):
        ids = [f"s{rng.randrange(10**6)}" for _ in range(rng.randint(2, 5))]
        ids = list(dict.fromkeys(ids))
        if len(ids) < 2:
            continue
        fraction = rng.choice([0.01, 0.1, 0.5, 0.9, 0.99])
        counts = Counter(_splits(ids, rng.randrange(5), fraction).values())
        assert counts["val"] >= 1 and counts["train"] >= 1, (ids, fraction)
    assert _splits(["only"], 0, 0.99) == {"only": "train"}
    assert set(_splits(["a", "b", "c"], 0, 0.0).values()) == {"train"}
    assert set(_splits(["a", "b", "c"], 0, 1.0).values()) == {"val"}


def test_the_fallback_val_scene_is_the_lowest_score() -> None:
    ids = ["a", "b", "c"]
    fraction = min(split_score(i, 0) for i in ids) / 2  # the hash rule alone gives no val
    lowest = min(ids, key=lambda i: split_score(i, 0))
    assert _splits(ids, 0, fraction) == {i: "val" if i == lowest else "train" for i in ids}


def test_plan_counts_and_extremes() -> None:
    ids = ["a", "b", "c", "d"]
    plan = plan_splits(ids, 2, 0.5)
    scores = {i: split_score(i, 2) for i in ids}
    assert plan == SplitPlan(
        2,
        0.5,
        scenes=4,
        hashed_val=sum(s < 0.5 for s in scores.values()),
        lowest=min(ids, key=scores.__getitem__),
        highest=max(ids, key=scores.__getitem__),
    )
    assert plan_splits([], 2, 0.5) == SplitPlan(2, 0.5)
