"""The nightly-inference flow: only scenes without a mask for the promoted model are predicted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows import tasks
from flows.inference import nightly_inference, pending_scenes
from flows.layout import Layout
from flows.registry import promote_if_better


def test_pending_scenes() -> None:
    inputs = ["1_sat.jpg", "2_sat.png", "3_sat.tif", "notes.txt"]
    outputs = ["2_mask.png", "9_mask.png", "errors"]
    assert pending_scenes(inputs, outputs) == ["1", "3"]


def test_nightly_inference_predicts_only_what_is_missing(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    layout = Layout(str(root))
    assert nightly_inference(root=str(root))["status"] == "no-model"

    promote_if_better(
        str(root),
        {
            "arch": "unet",
            "version": "v1",
            "model_uri": str(root / "models/unet/v1"),
            "val_miou": 0.5,
        },
    )
    incoming = Path(layout.incoming)
    incoming.mkdir(parents=True)
    for scene_id in ("1", "2", "3"):
        (incoming / f"{scene_id}_sat.jpg").write_bytes(b"jpeg")
    output = Path(layout.predictions("unet-v1"))
    output.mkdir(parents=True)
    (output / "2_mask.png").write_bytes(b"png")
    calls: list[tuple[str, str, str]] = []

    def fake_predict(model_uri: str, input_uri: str, output_uri: str, **_: Any) -> dict[str, Any]:
        calls.append((model_uri, input_uri, output_uri))
        todo = [p for p in Path(input_uri).glob("*_sat.jpg")]
        todo = [
            p
            for p in todo
            if not Path(output_uri, p.name.replace("_sat.jpg", "_mask.png")).exists()
        ]
        for path in todo:
            Path(output_uri, path.name.replace("_sat.jpg", "_mask.png")).write_bytes(b"png")
        return {"predicted": len(todo), "skipped": 3 - len(todo), "failed": 0, "output": output_uri}

    monkeypatch.setattr(tasks, "predict", fake_predict)
    summary = nightly_inference(root=str(root))
    assert calls == [(str(root / "models/unet/v1"), str(incoming), str(output))]
    assert (summary["scenes"], summary["already_done"], summary["predicted"]) == (3, 1, 2)
    assert summary["model_version"] == "unet-v1"

    again = nightly_inference(root=str(root))
    assert len(calls) == 1  # nothing left: batch inference is not even started
    assert (again["scenes"], again["already_done"], again["predicted"]) == (3, 3, 0)
