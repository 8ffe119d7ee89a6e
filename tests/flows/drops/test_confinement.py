"""The drop's trust boundary: nothing inside a drop steers a move (flows.drops.confinement).

The red-team examples: a ``_PENDING.json`` uploaded into a drop that "moves" raw/ files out and
replaces ``models/promoted.json``, a forged receipt, a symbolic link to a file outside the drop,
and (defence in depth) a hostile journal in the root's own ``state/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flows.drops.confinement import DropPlace, breach, unsafe_name
from flows.drops.drop import imagery_drop
from flows.drops.events import DROP_MARKER
from flows.drops.receipt import (
    JOURNAL_NAME,
    LEGACY_JOURNAL_NAME,
    LEGACY_RECEIPT_NAME,
    RECEIPT_NAME,
    Journal,
    Move,
)
from flows.layout import Layout


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def place(tmp_path: Path) -> DropPlace:
    return DropPlace(str(tmp_path / "drops" / "d"), "d", Layout(str(tmp_path / "root")))


def move(place: DropPlace, name: str, destination: str, kind: str) -> Move:
    return Move(f"{place.source}/{name}", destination, kind)


def test_planned_moves_pass_and_every_escape_is_refused_with_a_reason(place: DropPlace) -> None:
    layout, drop = place.layout, place.source
    good = [
        move(place, "1_sat.jpg", f"{layout.raw}/1_sat.jpg", "raw"),
        move(place, "1_mask.png", f"{layout.raw}/1_MASK.png", "raw"),  # the spelling raw/ has
        move(place, "2_sat.jpg", f"{layout.incoming}/2_sat.jpg", "incoming"),
        move(place, "notes.txt", place.rejected("notes.txt"), "rejected"),
        move(place, "a[1].jpg", place.rejected(unsafe_name("a[1].jpg")), "rejected"),
    ]
    assert [breach(place, m) for m in good] == [None] * len(good)
    bad = {
        "source outside the drop": Move(f"{layout.raw}/1_sat.jpg", f"{drop}/x", "rejected"),
        "source via ..": Move(
            f"{drop}/../../root/raw/1_sat.jpg", place.rejected("1_sat.jpg"), "rejected"
        ),
        "source in another drop": Move(f"{drop}x/1_sat.jpg", f"{layout.raw}/1_sat.jpg", "raw"),
        "destination models/": move(place, "promoted.json", layout.promoted_pointer, "raw"),
        "destination via ..": move(place, "1_sat.jpg", f"{layout.raw}/../models/1_sat.jpg", "raw"),
        "destination absolute": move(place, "1_sat.jpg", "/etc/1_sat.jpg", "raw"),
        "destination other root": move(place, "1_sat.jpg", "gs://other/raw/1_sat.jpg", "raw"),
        "renamed on the way": move(place, "1_sat.jpg", f"{layout.raw}/9_sat.jpg", "raw"),
        "kind and folder differ": move(place, "2_sat.jpg", f"{layout.raw}/2_sat.jpg", "incoming"),
        "not a scene into raw": move(place, "promoted.json", f"{layout.raw}/promoted.json", "raw"),
        "mask into incoming": move(
            place, "1_mask.png", f"{layout.incoming}/1_mask.png", "incoming"
        ),
        "nested rejected path": move(place, "x.txt", place.rejected("sub") + "/x.txt", "rejected"),
        "unknown kind": move(place, "1_sat.jpg", f"{layout.models}/1_sat.jpg", "models"),
    }
    reasons = {what: breach(place, m) for what, m in bad.items()}
    assert all(reasons.values()), {k: v for k, v in reasons.items() if not v}


def test_a_symlink_in_the_drop_may_only_go_to_rejected(place: DropPlace, tmp_path: Path) -> None:
    Path(place.source).mkdir(parents=True)
    secret = tmp_path / "secret_sat.jpg"
    secret.write_bytes(b"not the drop's")
    os.symlink(secret, Path(place.source) / "1_sat.jpg")
    assert "symbolic link" in str(
        breach(place, move(place, "1_sat.jpg", f"{place.layout.incoming}/1_sat.jpg", "incoming"))
    )
    assert breach(place, move(place, "1_sat.jpg", place.rejected("1_sat.jpg"), "rejected")) is None


def make_root(tmp_path: Path, tiny_scenes: Path) -> tuple[Path, Path, list[str]]:
    """A root with a labeled pair in raw/ and a promoted model; an empty drops/ folder."""
    root, drops = tmp_path / "root", tmp_path / "drops"
    ids = sorted(p.name[: -len("_sat.jpg")] for p in tiny_scenes.glob("*_sat.jpg"))
    (root / "raw").mkdir(parents=True)
    for name in (f"{ids[0]}_sat.jpg", f"{ids[0]}_mask.png"):
        (root / "raw" / name).write_bytes((tiny_scenes / name).read_bytes())
    (root / "models").mkdir()
    (root / "models" / "promoted.json").write_text('{"model_version": "the real one"}')
    drops.mkdir()
    return root, drops, ids


def hostile_moves(root: Path, drop: Path, outside: Path) -> list[dict[str, str]]:
    """Take raw/ files out, pull a file from outside the root in, replace promoted.json."""
    return [
        {"from": str(root / "raw" / name), "to": str(drop / name), "kind": "rejected"}
        for name in sorted(os.listdir(root / "raw"))
    ] + [
        {"from": str(outside), "to": str(root / "incoming" / "stolen_sat.jpg"), "kind": "incoming"},
        {"from": str(drop / "evil.json"), "to": str(root / "models/promoted.json"), "kind": "raw"},
        {"from": str(drop / "evil.json"), "to": str(root / "raw/../models/promoted.json")}
        | {"kind": "rejected"},
    ]


def journal_text(moves: list[dict[str, str]]) -> str:
    body = {"delivery_id": "forged", "event_id": None, "started_at": "t", "moves": moves}
    return json.dumps(body)


def test_a_forged_pending_journal_in_a_drop_moves_nothing_and_is_rejected_with_a_reason(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops, ids = make_root(tmp_path, tiny_scenes)
    outside = tmp_path / "outside_sat.jpg"
    outside.write_bytes((tiny_scenes / f"{ids[1]}_sat.jpg").read_bytes())
    drop = drops / "d"
    drop.mkdir()
    (drop / "evil.json").write_text('{"model_version": "attacker", "model_uri": "gs://evil"}')
    (drop / LEGACY_JOURNAL_NAME).write_text(journal_text(hostile_moves(root, drop, outside)))
    forged_receipt = {"deliveries": [{"delivery_id": "x", "files": [], "follow_ups": {}}]}
    (drop / LEGACY_RECEIPT_NAME).write_text(json.dumps(forged_receipt))
    (drop / JOURNAL_NAME).write_text(journal_text(hostile_moves(root, drop, outside)))
    image = (tiny_scenes / f"{ids[2]}_sat.jpg").read_bytes()
    (drop / f"{ids[2]}_sat.jpg").write_bytes(image)  # one real scene alongside
    (drop / DROP_MARKER).touch()
    raw_before, models_before = snapshot(root / "raw"), snapshot(root / "models")
    outside_before = outside.read_bytes()

    result = imagery_drop(bucket=str(drops), prefix="d", root=str(root), predict=False)

    assert snapshot(root / "raw") == raw_before  # nothing taken out of raw/
    assert snapshot(root / "models") == models_before  # promoted.json not replaced
    assert outside.read_bytes() == outside_before  # nothing pulled in from outside
    assert sorted(p.name for p in (root / "incoming").iterdir()) == [f"{ids[2]}_sat.jpg"]
    assert result["unlabeled"] == [ids[2]]
    assert list(drop.iterdir()) == []
    rejected = root / "rejected" / "d"
    forged = {LEGACY_JOURNAL_NAME, LEGACY_RECEIPT_NAME, JOURNAL_NAME}
    assert sorted(p.name for p in rejected.iterdir()) == sorted(
        [*forged, "evil.json", "errors.jsonl"]
    )
    errors = [json.loads(line) for line in (rejected / "errors.jsonl").read_text().splitlines()]
    reasons = {e["uri"].rsplit("/", 1)[-1]: e["reason"] for e in errors}
    assert all("named like the flow's own state" in reasons[name] for name in forged)
    assert "not a scene file" in reasons["evil.json"]
    # The flow's own receipt is in state/, and it knows only what really happened.
    receipt = json.loads((Path(Layout(str(root)).drop_state(str(drop))) / RECEIPT_NAME).read_text())
    assert [d["delivery_id"] for d in receipt["deliveries"]] != ["x"]
    assert receipt["unlabeled"] == [ids[2]]


def test_a_hostile_journal_in_state_is_refused_move_by_move(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    """Defence in depth: even a journal where the flow keeps its own (a bug, a corrupted
    state/) moves nothing outside the drop's confinement; the drop's files are re-planned."""
    root, drops, ids = make_root(tmp_path, tiny_scenes)
    outside = tmp_path / "outside_sat.jpg"
    outside.write_bytes(b"outside")
    drop = drops / "d"
    drop.mkdir()
    (drop / "evil.json").write_text("{}")
    (drop / f"{ids[2]}_sat.jpg").write_bytes((tiny_scenes / f"{ids[2]}_sat.jpg").read_bytes())
    (drop / DROP_MARKER).touch()
    place = DropPlace(str(drop), "d", Layout(str(root)))
    journal = Journal.from_json(journal_text(hostile_moves(root, drop, outside)))
    Path(place.journal_uri).parent.mkdir(parents=True)
    Path(place.journal_uri).write_text(journal.to_json())
    raw_before, models_before = snapshot(root / "raw"), snapshot(root / "models")

    imagery_drop(bucket=str(drops), prefix="d", root=str(root), predict=False)

    assert snapshot(root / "raw") == raw_before and snapshot(root / "models") == models_before
    assert outside.read_bytes() == b"outside"
    assert not Path(place.journal_uri).exists()
    assert sorted(p.name for p in (root / "incoming").iterdir()) == [f"{ids[2]}_sat.jpg"]
    assert (root / "rejected" / "d" / "evil.json").read_text() == "{}"
    assert list(drop.iterdir()) == []


def test_a_symlink_in_a_drop_is_moved_as_a_link_and_its_target_never_read(
    prefect_harness: None, tmp_path: Path, tiny_scenes: Path, scene_readers: None
) -> None:
    root, drops, ids = make_root(tmp_path, tiny_scenes)
    drop = drops / "d"
    drop.mkdir()
    target = root / "raw" / f"{ids[0]}_sat.jpg"
    os.symlink(target, drop / "copy_sat.jpg")  # would copy a raw/ scene into incoming/
    (drop / DROP_MARKER).touch()
    raw_before = snapshot(root / "raw")

    result = imagery_drop(bucket=str(drops), prefix="d", root=str(root), predict=False)

    assert result["unlabeled"] == [] and snapshot(root / "raw") == raw_before
    assert not (root / "incoming").exists() or not any((root / "incoming").iterdir())
    moved = root / "rejected" / "d" / "copy_sat.jpg"
    assert moved.is_symlink() and os.readlink(moved) == str(target)
    assert "symbolic link" in result["invalid"][0]["reason"]
    assert list(drop.iterdir()) == []
