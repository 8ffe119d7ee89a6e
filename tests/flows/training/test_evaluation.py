"""The train flow's evaluation step: every candidate and the promoted model on the val scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows import tasks
from flows.layout import Layout
from flows.training.candidates import Candidate
from flows.training.evaluation import (
    Evaluation,
    Scores,
    evaluate_candidates,
    report_pictures,
)
from models.train.config import TrainConfig
from pipelines.predict.options import PredictOptions


def candidate(arch: str, training_score: float | None = None) -> Candidate:
    metadata = {} if training_score is None else {"val_miou": training_score}
    return Candidate(arch, TrainConfig(data="d", output=f"/models/{arch}/v"), metadata)


def test_without_val_scenes_a_candidate_keeps_its_training_score() -> None:
    evaluation = Evaluation("default", "/r/reports/x", (), {})
    assert evaluation.score(candidate("unet", 0.31)) == 0.31
    assert evaluation.score(candidate("unet")) is None
    scored = Evaluation("default", "/r", ("1", "2"), {"unet": Scores({"miou": 0.6})})
    assert scored.score(candidate("unet", 0.31)) == 0.6  # the val scenes win
    assert scored.evaluated_on == "2 val scenes of records/default"


def test_pictures_list_the_confusion_matrix_first(tmp_path: Path) -> None:
    (tmp_path / "scenes").mkdir()
    for name in ("scenes/2.png", "scenes/10.png", "confusion_matrix.png", "metrics.json"):
        (tmp_path / name).write_bytes(b"x")
    assert [Path(p).relative_to(tmp_path).as_posix() for p in report_pictures(str(tmp_path))] == [
        "confusion_matrix.png",
        "scenes/10.png",
        "scenes/2.png",
    ]


class Stages:
    """predict/evaluate stand-ins that record their calls; a named model can fail to predict."""

    def __init__(self, scores: dict[str, float], broken: str = "") -> None:
        self.scores, self.broken = scores, broken
        self.evaluated: list[dict[str, Any]] = []

    def predict(self, model_uri: str, input_uri: str, output_uri: str, **_: Any) -> dict:
        if self.broken and self.broken in model_uri:
            raise FileNotFoundError(f"{model_uri}/model.keras")
        Path(output_uri).mkdir(parents=True)
        return {"predicted": 1}

    def evaluate(self, pred_uri: str, truth_uri: str, output_uri: str, **kw: Any) -> dict:
        self.evaluated.append({"pred": pred_uri, "truth": truth_uri, **kw})
        Path(output_uri, "confusion_matrix.png").write_bytes(b"png")
        return {"miou": self.scores[Path(output_uri).name]}


def val_root(tmp_path: Path) -> Layout:
    raw = tmp_path / "raw"
    raw.mkdir()
    for scene_id in ("1", "2"):
        (raw / f"{scene_id}_sat.jpg").write_bytes(b"jpg")
        (raw / f"{scene_id}_mask.png").write_bytes(b"png")
    return Layout(str(tmp_path))


def test_each_candidate_is_scored_beside_the_next_and_the_promoted_model_re_scored(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = val_root(tmp_path)
    stages = Stages({"unet": 0.4, "deeplabv3plus": 0.5, "promoted-unet-old": 0.45})
    monkeypatch.setattr(tasks, "predict", stages.predict)
    monkeypatch.setattr(tasks, "evaluate", stages.evaluate)
    report = layout.report("run1")
    promoted = {"model_version": "unet-old", "model_uri": "/models/unet/old"}
    evaluation = evaluate_candidates(
        layout,
        report,
        "default",
        [candidate("unet"), candidate("deeplabv3plus")],
        ["1", "2"],
        promoted,
        PredictOptions(),
        [],
    )
    assert evaluation.val_ids == ("1", "2")
    assert {a: s.miou for a, s in evaluation.scores.items()} == {"unet": 0.4, "deeplabv3plus": 0.5}
    assert evaluation.baseline == 0.45
    # the val scenes were staged (not read from raw/, which holds every split)
    staged = sorted(p.name for p in Path(report, "val", "images").iterdir())
    assert staged == ["1_sat.jpg", "2_sat.jpg"]
    unet, deeplab = stages.evaluated[:2]
    assert unet["labels"] == ("unet", "deeplabv3plus")
    assert unet["second_pred_uri"] == deeplab["pred"] == f"{report}/deeplabv3plus/masks"
    assert unet["truth"] == f"{report}/val/truth"
    assert evaluation.scores["unet"].pictures == (f"{report}/unet/confusion_matrix.png",)

    # A promoted model that cannot be scored any more leaves no baseline, and blocks nothing.
    stages.broken = "/models/unet/old"
    again = evaluate_candidates(
        layout, layout.report("run2"), "default", [candidate("unet")], ["1"], promoted,
        PredictOptions(), [],
    )  # fmt: skip
    assert again.baseline is None and again.scores["unet"].miou == 0.4


def test_no_val_scenes_means_no_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: Any, **__: Any) -> None:
        raise AssertionError("predicted without val scenes")

    monkeypatch.setattr(tasks, "predict", never)
    evaluation = evaluate_candidates(
        Layout("/r"), "/r/reports/x", "d", [candidate("unet", 0.2)], [], None,
        PredictOptions(), [],
    )  # fmt: skip
    assert evaluation.scores == {} and evaluation.baseline is None
    assert evaluation.score(candidate("unet", 0.2)) == 0.2
