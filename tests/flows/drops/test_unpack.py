"""Drops never lose, replace or double-move accepted input (flows.drops.unpack via imagery_drop)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from flows.drops.drop import imagery_drop
from flows.drops.events import DROP_MARKER
from flows.drops.receipt import RECEIPT_NAME
from flows.layout import Layout
from pipelines.io import locks


def scene_ids(tiny_scenes: Path) -> list[str]:
    return sorted(p.name[: -len("_sat.jpg")] for p in tiny_scenes.glob("*_sat.jpg"))


def new_drop(drops: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = drops / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in files.items():
        (folder / file_name).write_bytes(data)
    (folder / DROP_MARKER).touch()
    return folder


def pair(tiny_scenes: Path, scene_id: str, as_id: str | None = None) -> dict[str, bytes]:
    as_id = as_id or scene_id
    return {
        f"{as_id}_sat.jpg": (tiny_scenes / f"{scene_id}_sat.jpg").read_bytes(),
        f"{as_id}_mask.png": (tiny_scenes / f"{scene_id}_mask.png").read_bytes(),
    }


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def receipt_file(root: Path, folder: Path) -> Path:
    """Where the flow keeps the drop ``folder``'s receipt: the root's state/, not the drop."""
    return Path(Layout(str(root)).drop_state(str(folder))) / RECEIPT_NAME


def receipt(root: Path, folder: Path) -> dict[str, object]:
    return json.loads(receipt_file(root, folder).read_text())


def test_an_id_already_in_raw_with_other_content_is_quarantined_and_raw_kept(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops = tmp_path / "root", tmp_path / "drops"
    ids = scene_ids(tiny_scenes)
    new_drop(drops, "first", pair(tiny_scenes, ids[0]))
    imagery_drop(bucket=str(drops), prefix="first", root=str(root), retrain=False)
    raw_before = snapshot(root / "raw")
    assert len(raw_before) == 2

    # Same id, other scene's bytes: quarantined as a pair, with the reason; raw/ untouched.
    folder = new_drop(drops, "second", pair(tiny_scenes, ids[1], as_id=ids[0]))
    result = imagery_drop(bucket=str(drops), prefix="second", root=str(root), retrain=False)
    assert snapshot(root / "raw") == raw_before
    assert result["labeled"] == [] and len(result["invalid"]) == 2
    assert all(
        f"scene id {ids[0]} conflicts" in e["reason"] and "different content" in e["reason"]
        for e in result["invalid"]
    )
    rejected = root / "rejected" / "second"
    assert (rejected / f"{ids[0]}_mask.png").read_bytes() == pair(tiny_scenes, ids[1])[
        f"{ids[1]}_mask.png"
    ]
    errors = (rejected / "errors.jsonl").read_text().splitlines()
    assert len(errors) == 2 and all("conflicts" in json.loads(e)["reason"] for e in errors)
    assert list(folder.iterdir()) == []

    # Identical content again: idempotent, nothing quarantined, the drop emptied.
    new_drop(drops, "third", pair(tiny_scenes, ids[0]))
    again = imagery_drop(bucket=str(drops), prefix="third", root=str(root), retrain=False)
    assert again["invalid"] == [] and again["labeled"] == [ids[0]]
    assert snapshot(root / "raw") == raw_before
    assert list((drops / "third").iterdir()) == []

    # An id that differs from one in incoming/ only by case is the same id: other bytes are
    # quarantined, never a second scene beside it.
    image = {f"{ids[2]}_sat.jpg": (tiny_scenes / f"{ids[2]}_sat.jpg").read_bytes()}
    new_drop(drops, "fourth", image)
    imagery_drop(bucket=str(drops), prefix="fourth", root=str(root), predict=False)
    other = {f"{ids[2]}_SAT.JPG": (tiny_scenes / f"{ids[3]}_sat.jpg").read_bytes()}
    new_drop(drops, "fifth", other)
    fifth = imagery_drop(bucket=str(drops), prefix="fifth", root=str(root), predict=False)
    assert fifth["unlabeled"] == [] and "conflicts" in fifth["invalid"][0]["reason"]
    assert [p.name for p in (root / "incoming").iterdir()] == [f"{ids[2]}_sat.jpg"]


@pytest.mark.parametrize(
    "prefix",
    # (a pattern character such as "*" is no longer refused: it is a literal name everywhere,
    # through the scene catalog and storage's literal paths)
    ["../root/raw", "/../root/raw", "x/../../root/raw", "gs://other/bucket", "．．/root"],
)
def test_a_drop_prefix_that_escapes_the_drops_folder_is_refused(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, prefix: str
) -> None:
    root, drops = tmp_path / "root", tmp_path / "drops"
    shutil.copytree(tiny_scenes, root / "raw")
    drops.mkdir()
    before = snapshot(root)
    with pytest.raises(ValueError, match=r"refused|unsafe|outside|overlaps"):
        imagery_drop(bucket=str(drops), prefix=prefix, root=str(root), retrain=False)
    assert snapshot(root) == before


def test_a_drop_that_is_or_links_to_the_roots_data_is_refused(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_scenes, root / "raw")
    (root / "raw" / DROP_MARKER).touch()
    before = snapshot(root)
    # The drops folder is the root itself, and the drop its raw/ folder.
    with pytest.raises(ValueError, match="overlaps"):
        imagery_drop(bucket=str(root), prefix="raw", root=str(root), retrain=False)
    # A drop that is a symlink to raw/.
    (tmp_path / "drops").mkdir()
    os.symlink(root / "raw", tmp_path / "drops" / "sneaky")
    with pytest.raises(ValueError, match=r"outside|overlaps"):
        imagery_drop(bucket=str(tmp_path / "drops"), prefix="sneaky", root=str(root))
    assert snapshot(root) == before


def test_unsafe_and_case_colliding_names_are_dead_lettered_with_reasons(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops = tmp_path / "root", tmp_path / "drops"
    ids = scene_ids(tiny_scenes)
    image = (tiny_scenes / f"{ids[0]}_sat.jpg").read_bytes()
    files = {
        "a[1]_sat.jpg": image,
        "Ab_sat.jpg": image,
        "aB_sat.jpg": image,
        "x\u202e_sat.jpg": image,
    }
    folder = new_drop(drops, "odd", files)
    result = imagery_drop(bucket=str(drops), prefix="odd", root=str(root), predict=False)
    reasons = sorted(e["reason"] for e in result["invalid"])
    # a pattern character is a literal name (the scene catalog, storage's literal paths): kept
    assert len(reasons) == 3 and result["unlabeled"] == ["a[1]"]
    assert sum("invisible character" in r for r in reasons) == 1
    assert sum("same name up to case" in r for r in reasons) == 2
    assert [p.name for p in (root / "incoming").iterdir()] == ["a[1]_sat.jpg"]
    assert list(folder.iterdir()) == []
    rejected = sorted(p.name for p in (root / "rejected" / "odd").iterdir())
    assert len(rejected) == 4 and "errors.jsonl" in rejected  # every file is accounted for


def test_redelivery_changes_nothing_and_late_files_are_a_new_delivery(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops = tmp_path / "root", tmp_path / "drops"
    ids = scene_ids(tiny_scenes)
    folder = new_drop(drops, "d", pair(tiny_scenes, ids[0]))
    first = imagery_drop(
        bucket=str(drops), prefix="d", root=str(root), retrain=False, event_id="ev-1"
    )
    assert first["deliveries"] == ["ev-1"] and first["training"]["action"] == "recorded"
    written = receipt_file(root, folder).read_bytes()
    due = (Path(Layout(str(root)).retrain_due)).read_bytes()

    # The same event again (marker and all): nothing happens, the receipt is not rewritten.
    (folder / DROP_MARKER).touch()
    again = imagery_drop(
        bucket=str(drops), prefix="d", root=str(root), retrain=False, event_id="ev-1"
    )
    assert again["deliveries"] == [] and "training" not in again
    assert receipt_file(root, folder).read_bytes() == written
    assert Path(Layout(str(root)).retrain_due).read_bytes() == due
    assert not (folder / DROP_MARKER).exists()

    # Late files for the processed drop, closed by a new marker: a second delivery, merged.
    new_drop(drops, "d", pair(tiny_scenes, ids[1]))
    late = imagery_drop(bucket=str(drops), prefix="d", root=str(root), retrain=False)
    assert late["labeled"] == [ids[1]] and late["deliveries"][0].startswith("marker:")
    body = receipt(root, folder)
    assert [d["delivery_id"] for d in body["deliveries"]] == ["ev-1", late["deliveries"][0]]
    assert body["labeled"] == sorted(ids[:2])
    for delivery in body["deliveries"]:
        assert all(len(f["sha256"]) == 64 and f["size"] > 0 for f in delivery["files"])
    entries = json.loads(Path(Layout(str(root)).retrain_due).read_text())["due"]
    assert [e["delivery"] for e in entries] == ["ev-1", late["deliveries"][0]]


def test_a_second_run_for_a_locked_root_waits_then_gives_up_cleanly(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops = tmp_path / "root", tmp_path / "drops"
    ids = scene_ids(tiny_scenes)
    folder = new_drop(drops, "d", pair(tiny_scenes, ids[0]))
    before = snapshot(folder)
    with (
        locks.lock(Layout(str(root)).drop_lock, "another run", 60),
        pytest.raises(locks.LockHeldError, match="another run"),
    ):
        imagery_drop(bucket=str(drops), prefix="d", root=str(root), lock_wait_s=0.5)
    assert snapshot(folder) == before and not (root / "raw").exists()


def test_secrets_in_the_environment_never_reach_written_files(
    prefect_harness: None,
    tmp_path: Path,
    tiny_scenes: Path,
    scene_readers: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = {
        "PREFECT_API_KEY": "pnu_secretsecretsecret0001",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value-0002",
        "LANDCOVER_TEST_TOKEN": "landcover-token-0003",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    root, drops = tmp_path / "root", tmp_path / "drops"
    ids = scene_ids(tiny_scenes)
    files = {**pair(tiny_scenes, ids[0]), "notes.txt": b"hello"}
    folder = new_drop(drops, "d", files)
    imagery_drop(bucket=str(drops), prefix="d", root=str(root), retrain=False)
    written = {**snapshot(root), **{f"drop/{k}": v for k, v in snapshot(folder).items()}}
    assert any(name.endswith(RECEIPT_NAME) for name in written)
    for name, data in written.items():
        for value in secrets.values():
            assert value.encode() not in data, f"{value} leaked into {name}"
