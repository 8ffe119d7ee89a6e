"""The train flow's report step: the markdown a person reads in the UI and in report.md."""

from __future__ import annotations

from flows.training.candidates import Candidate
from flows.training.evaluation import Evaluation, Scores
from flows.training.promotion import Promotion
from flows.training.report import MAX_PICTURES, training_report
from models.train.config import TrainConfig


def test_report_tables_decision_and_pictures() -> None:
    config = TrainConfig(data="d", output="/root/models/unet/r1")
    unet = Candidate("unet", config, {"val_miou": 0.3, "history": [{}] * 2, "wall_time_s": 61.4})
    deeplab = Candidate("deeplabv3plus", TrainConfig(data="d", output="/root/models/dl/r1"))
    pictures = tuple(f"/root/reports/r1/unet/scenes/{i}.png" for i in range(MAX_PICTURES + 3))
    metrics = {
        "miou": 0.42,
        "pixel_accuracy": 0.9,
        "per_class_iou": {"urban": 0.5, "agriculture": float("nan")},
        "per_class_dice": {"urban": 0.66},
    }
    evaluation = Evaluation(
        "default", "/root/reports/r1", ("1",), {"unet": Scores(metrics, pictures)}
    )
    promotion = Promotion(
        promoted=False,
        candidate={"model_version": "unet-r1", "val_miou": 0.42},
        previous="unet-r0",
        baseline_score=0.5,
    )
    text = training_report("r1", [unet, deeplab], evaluation, promotion)
    assert "| class | unet IoU | unet Dice | deeplabv3plus IoU | deeplabv3plus Dice |" in text
    assert "| urban | 0.500 | 0.660 | – | – |" in text
    assert "| agriculture | – | – | – | – |" in text  # NaN: the class is absent
    assert "| **mIoU** | 0.420 |  | – |  |" in text
    assert (
        "| unet | 0.420 | 0.300 | 2 | 61 | [/root/models/unet/r1](file:///root/models/unet/r1) |"
        in text
    )
    assert (
        "**Not promoted**: best candidate `unet-r1` (0.420); the promoted `unet-r0` scores "
        "0.500 on the same scenes." in text
    )
    assert text.count("/unet/scenes/") == MAX_PICTURES
    assert "- … and 3 more in the report folder" in text
    assert "**deeplabv3plus** ([report folder](file:///root/reports/r1/deeplabv3plus))" in text
