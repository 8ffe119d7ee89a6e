"""The imagery-drop flow: validation, where files go, what it triggers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from prefect import flow

from flows.drops import drop as drop_module
from flows.drops.drop import error_lines, imagery_drop
from flows.drops.events import DROP_MARKER
from flows.drops.receipt import RECEIPT_NAME
from flows.layout import Layout, safe_name


def test_error_lines_use_the_dead_letter_format() -> None:
    text = error_lines([("/d/x.txt", "/root/rejected/d/x.txt", "not a scene file")])
    record = json.loads(text)
    assert record == {
        "uri": "/root/rejected/d/x.txt",
        "reason": "not a scene file (dropped as /d/x.txt)",
        "stage": "imagery-drop",
        "scene_id": "",
    }


def make_drop(tiny_scenes: Path, drops: Path, name: str) -> tuple[Path, list[str]]:
    """Two labeled pairs, one unlabeled image, a corrupt JPEG, an orphan mask, a stray file."""
    folder = drops / name
    folder.mkdir(parents=True)
    ids = sorted(p.name[: -len("_sat.jpg")] for p in tiny_scenes.glob("*_sat.jpg"))
    for scene_id in ids[:2]:
        shutil.copy(tiny_scenes / f"{scene_id}_sat.jpg", folder)
        shutil.copy(tiny_scenes / f"{scene_id}_mask.png", folder)
    shutil.copy(tiny_scenes / f"{ids[2]}_sat.jpg", folder)
    (folder / "777_sat.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    shutil.copy(tiny_scenes / f"{ids[3]}_mask.png", folder)
    (folder / "notes.txt").write_text("hello")
    (folder / DROP_MARKER).touch()
    return folder, ids


def test_drop_flow_moves_files_reports_invalid_and_records_retraining(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops = tmp_path / "root", tmp_path / "drops"
    folder, ids = make_drop(tiny_scenes, drops, "d1")
    result = imagery_drop(bucket=str(drops), prefix="d1", root=str(root), retrain=False)

    assert result["labeled"] == ids[:2] and result["unlabeled"] == [ids[2]]
    assert sorted(p.name for p in (root / "raw").iterdir()) == sorted(
        [f"{i}_sat.jpg" for i in ids[:2]] + [f"{i}_mask.png" for i in ids[:2]]
    )
    assert [p.name for p in (root / "incoming").iterdir()] == [f"{ids[2]}_sat.jpg"]
    rejected = root / "rejected" / "d1"
    assert sorted(p.name for p in rejected.iterdir()) == sorted(
        ["777_sat.jpg", f"{ids[3]}_mask.png", "notes.txt", "errors.jsonl"]
    )
    errors = [json.loads(line) for line in (rejected / "errors.jsonl").read_text().splitlines()]
    assert {e["uri"].rsplit("/", 1)[-1] for e in errors} == {
        "777_sat.jpg",
        f"{ids[3]}_mask.png",
        "notes.txt",
    }
    assert all(e["stage"] == "imagery-drop" and e["reason"] for e in errors)
    # Nothing is lost: the drop is empty, the marker gone; the receipt is in the root's state/.
    assert list(folder.iterdir()) == []
    receipt = Path(Layout(str(root)).drop_state(str(folder))) / RECEIPT_NAME
    assert json.loads(receipt.read_text())["labeled"] == ids[:2]
    # retrain=False: retraining recorded as due; no promoted model: inference waits.
    due = json.loads((root / "state" / "retrain-due.json").read_text())["due"]
    assert [(d["drop"], d["scenes"]) for d in due] == [("d1", 2)]
    assert result["training"]["action"] == "recorded"
    assert result["inference"]["status"] == "no-model"

    # The same event delivered again finds nothing left to do.
    (folder / DROP_MARKER).touch()
    again = imagery_drop(bucket=str(drops), prefix="d1", root=str(root), retrain=False)
    assert again["labeled"] == [] and again["unlabeled"] == [] and again["invalid"] == []
    assert "training" not in again


def test_drop_flow_trains_as_a_subflow_without_a_deployment(
    prefect_harness: None,
    tmp_path: Path,
    tiny_scenes: Path,
    monkeypatch: pytest.MonkeyPatch,
    scene_readers: None,
) -> None:
    calls: list[dict[str, Any]] = []

    @flow(name="train")
    def fake_train(**parameters: Any) -> dict[str, Any]:
        calls.append(parameters)
        return {"run": "r1", "promoted": True}

    import flows.train

    monkeypatch.setattr(flows.train, "train", fake_train)
    assert not drop_module.deployment_exists("train/landcover")
    root, drops = tmp_path / "root", tmp_path / "drops"
    make_drop(tiny_scenes, drops, "d2")
    result = imagery_drop(
        bucket=str(drops),
        prefix="d2",
        root=str(root),
        train_parameters={"training": {"epochs": 1}},
        predict=False,
    )
    assert calls == [{"training": {"epochs": 1}, "root": str(root)}]
    assert result["training"] == {"action": "subflow", "run": "r1", "promoted": True}
    assert "inference" not in result


def test_drop_from_a_gcs_bucket_into_a_gcs_root(
    prefect_harness: None, gcs_emulator: str, gcs_root: str, tiny_scenes: Path, scene_readers: None
) -> None:
    """bucket + prefix name a real bucket (the emulator); every file moves through gs://."""
    from pipelines.io import storage

    prefix = f"{gcs_root.split('/', 3)[3]}/drops/2024-06-01"
    drop = f"gs://{gcs_emulator}/{prefix}"
    image = sorted(tiny_scenes.glob("*_sat.jpg"))[0]
    storage.upload_file(str(image), storage.join(drop, image.name))
    storage.write_bytes(storage.join(drop, "broken_sat.jpg"), b"not a jpeg")
    storage.write_bytes(storage.join(drop, DROP_MARKER), b"")
    root = storage.join(gcs_root, "root")

    result = imagery_drop(bucket=gcs_emulator, prefix=prefix, root=root, predict=False)

    assert result["drop"] == drop and result["unlabeled"] == [image.name[: -len("_sat.jpg")]]
    assert storage.exists(storage.join(root, "incoming", image.name))
    rejected = storage.join(root, "rejected", safe_name(prefix))
    assert storage.exists(storage.join(rejected, "broken_sat.jpg"))
    assert storage.exists(storage.join(rejected, "errors.jsonl"))
    assert storage.list_files(drop) == []
    receipt = storage.join(Layout(root).drop_state(drop), RECEIPT_NAME)
    assert storage.exists(receipt) and storage.join(root, "state") in receipt


def test_a_second_drop_reusing_an_id_with_another_label_format_is_a_conflict(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    """``a_mask.png`` after ``a_mask.tif``: the scene catalog says scene ``a`` has a label
    already, so the second drop's scene is quarantined (it landed in raw/ beside the first, and
    preprocess used one of the two)."""
    import numpy as np
    import rasterio
    from PIL import Image

    from pipelines.core.palette import decode_mask

    root, drops = tmp_path / "root", tmp_path / "drops"
    scene_id = sorted(p.name[: -len("_sat.jpg")] for p in tiny_scenes.glob("*_sat.jpg"))[0]
    first = drops / "first"
    first.mkdir(parents=True)
    shutil.copy(tiny_scenes / f"{scene_id}_sat.jpg", first)
    ids = decode_mask(np.asarray(Image.open(tiny_scenes / f"{scene_id}_mask.png").convert("RGB")))
    profile = {"driver": "GTiff", "height": 128, "width": 128, "count": 1, "dtype": "uint8"}
    with rasterio.open(first / f"{scene_id}_mask.tif", "w", **profile) as dst:
        dst.write(ids, 1)
    (first / DROP_MARKER).touch()
    assert imagery_drop(bucket=str(drops), prefix="first", root=str(root), retrain=False)[
        "labeled"
    ] == [scene_id]

    second = drops / "second"
    second.mkdir()
    shutil.copy(tiny_scenes / f"{scene_id}_sat.jpg", second)
    shutil.copy(tiny_scenes / f"{scene_id}_mask.png", second)
    (second / DROP_MARKER).touch()
    result = imagery_drop(bucket=str(drops), prefix="second", root=str(root), retrain=False)
    assert result["labeled"] == []
    assert sorted(p.name for p in (root / "raw").iterdir()) == [
        f"{scene_id}_mask.tif",
        f"{scene_id}_sat.jpg",
    ]
    errors = (root / "rejected" / "second" / "errors.jsonl").read_text()
    assert f"{scene_id}_mask.png would be a second label of scene {scene_id}" in errors
