"""The nightly-inference flow: batch inference decides what is done (its done-records), the flow
never pre-filters by file name; a vanished promoted model is a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flows import tasks
from flows.inference import nightly_inference
from flows.layout import Layout
from flows.registry import PromotedModelMissingError, promote_if_better


def test_nightly_inference_leaves_done_ness_to_batch_inference(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    layout = Layout(str(root))
    assert nightly_inference(root=str(root))["status"] == "no-model"

    model_dir = root / "models/unet/v1"
    model_dir.mkdir(parents=True)
    (model_dir / "model.keras").write_bytes(b"model")
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

    # A file named like a finished mask is not "done": only batch inference's records say so.
    assert (summary["skipped"], summary["failed"]) == (1, 0)

    again = nightly_inference(root=str(root))
    assert len(calls) == 2  # asked again; batch inference skips what its records say is done
    assert (again["scenes"], again["already_done"], again["predicted"]) == (3, 3, 0)

    (model_dir / "model.keras").unlink()
    with pytest.raises(PromotedModelMissingError, match=r"unet-v1 is missing: .*model\.keras"):
        nightly_inference(root=str(root))
    assert len(calls) == 2


HOLD_PREDICTIONS_LOCK = """
import sys, time
from flows.layout import Layout
from pipelines.io.locks import lock

with lock(Layout(sys.argv[1]).predictions_lock("unet-v1"), "nightly-inference (killed)"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_a_sigkilled_nightly_runs_lock_does_not_block_the_next_run(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal
    import subprocess
    import sys

    root = tmp_path / "root"
    (root / "models/unet/v1").mkdir(parents=True)
    (root / "models/unet/v1/model.keras").write_bytes(b"model")
    model = {"arch": "unet", "version": "v1", "model_uri": str(root / "models/unet/v1")}
    promote_if_better(str(root), {**model, "val_miou": 0.5})
    (root / "incoming").mkdir()
    (root / "incoming/1_sat.jpg").write_bytes(b"jpeg")
    killed = subprocess.Popen(
        [sys.executable, "-c", HOLD_PREDICTIONS_LOCK, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert killed.stdout is not None and killed.stdout.readline().strip() == "held"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=10)
    assert Path(Layout(str(root)).predictions_lock("unet-v1")).exists()  # left behind

    def fake_predict(*_: Any, **__: Any) -> dict[str, Any]:
        return {"predicted": 1, "skipped": 0, "failed": 0}

    monkeypatch.setattr(tasks, "predict", fake_predict)
    summary = nightly_inference(root=str(root), lock_wait_s=0)  # no waiting at all
    assert (summary["status"], summary["predicted"]) == ("ok", 1)
    assert not Path(Layout(str(root)).predictions_lock("unet-v1")).exists()  # released
