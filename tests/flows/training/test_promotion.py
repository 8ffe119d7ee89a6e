"""The train flow's promotion step: the best candidate, against the promoted model's score."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.registry import read_promoted
from flows.training.candidates import Candidate
from flows.training.evaluation import Evaluation, Scores
from flows.training.promotion import best_candidate, promote
from models.train.config import TrainConfig


def trained(root: Path, arch: str, run: str) -> Candidate:
    """A candidate whose model file exists (promotion checks it before pointing at it)."""
    output = root / "models" / arch / run
    output.mkdir(parents=True)
    (output / "model.keras").write_bytes(arch.encode())
    return Candidate(arch, TrainConfig(data="d", output=str(output)), {"val_miou": 0.1})


def scored(run: str, scores: dict[str, float | None], baseline: float | None = None) -> Evaluation:
    return Evaluation(
        "default",
        f"/r/reports/{run}",
        ("1", "2", "3"),
        {a: Scores({"miou": s, "per_class_iou": {"urban": s}}) for a, s in scores.items()},
        baseline,
    )


def test_best_candidate_skips_unscored_and_keeps_the_first_of_a_tie() -> None:
    config = TrainConfig(data="d", output="o")
    a, b, c = (Candidate(arch, config) for arch in ("a", "b", "c"))
    evaluation = scored("r", {"a": None, "b": 0.5, "c": 0.5})
    assert best_candidate([a, b, c], evaluation) is b
    assert best_candidate([a], scored("r", {"a": None})) is None


def test_first_promotion_then_a_better_one_then_a_worse_one(tmp_path: Path) -> None:
    root = str(tmp_path)
    first = [trained(tmp_path, "unet", "r1"), trained(tmp_path, "deeplabv3plus", "r1")]
    promotion = promote(root, "r1", first, scored("r1", {"unet": 0.4, "deeplabv3plus": 0.5}), None)
    assert promotion.promoted and promotion.previous is None and promotion.baseline_score is None
    assert promotion.candidate is not None
    assert promotion.candidate["model_version"] == "deeplabv3plus-r1"
    assert promotion.candidate["evaluated_on"] == "3 val scenes of records/default"
    pointer = read_promoted(root)
    assert pointer is not None and pointer["arch"] == "deeplabv3plus"
    assert pointer["per_class_iou"] == {"urban": 0.5}

    # Re-scored on this run's val scenes the promoted model has 0.45: 0.47 beats it.
    second = [trained(tmp_path, "unet", "r2")]
    promotion = promote(root, "r2", second, scored("r2", {"unet": 0.47}, 0.45), pointer)
    assert promotion.promoted and promotion.previous == "deeplabv3plus-r1"
    assert promotion.baseline_score == 0.45
    pointer = read_promoted(root)
    assert pointer is not None and pointer["model_version"] == "unet-r2"

    # Not re-scored (baseline None): the stored 0.47 is the bar, and 0.46 does not clear it.
    third = [trained(tmp_path, "unet", "r3")]
    promotion = promote(root, "r3", third, scored("r3", {"unet": 0.46}), pointer)
    assert not promotion.promoted
    assert promotion.baseline_score == pytest.approx(0.47)
    assert read_promoted(root)["model_version"] == "unet-r2"  # type: ignore[index]


def test_nothing_scored_promotes_nothing(tmp_path: Path) -> None:
    candidates = [trained(tmp_path, "unet", "r1")]
    candidates[0] = Candidate("unet", candidates[0].config)  # no training score either
    promotion = promote(str(tmp_path), "r1", candidates, scored("r1", {}), None)
    assert not promotion.promoted and promotion.candidate is None
    assert read_promoted(str(tmp_path)) is None
