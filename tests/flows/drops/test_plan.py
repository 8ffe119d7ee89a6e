"""Sorting a drop's files by name (flows.drops.plan)."""

from __future__ import annotations

from flows.drops.events import DROP_MARKER
from flows.drops.plan import plan_drop
from flows.drops.receipt import JOURNAL_NAME, LEGACY_JOURNAL_NAME, LEGACY_RECEIPT_NAME


def test_plan_sorts_pairs_images_and_invalid_files() -> None:
    plan = plan_drop(
        [
            "/d/1_sat.jpg",
            "/d/1_mask.png",
            "/d/2_sat.jpg",
            "/d/3_sat.tif",
            "/d/4_mask.png",
            "/d/5_sat.png",
            "/d/5_mask.png",
            "/d/readme.txt",
            f"/d/{DROP_MARKER}",
            f"/d/{LEGACY_RECEIPT_NAME}",
            f"/d/{LEGACY_JOURNAL_NAME}",
            f"/d/{JOURNAL_NAME}",
        ]
    )
    assert plan.pairs == [("1", "/d/1_sat.jpg", "/d/1_mask.png")]
    assert plan.images == [("2", "/d/2_sat.jpg"), ("3", "/d/3_sat.tif")]
    reasons = dict(plan.invalid)
    state = {f"/d/{n}" for n in (LEGACY_RECEIPT_NAME, LEGACY_JOURNAL_NAME, JOURNAL_NAME)}
    assert (
        set(reasons) == {"/d/4_mask.png", "/d/5_sat.png", "/d/5_mask.png", "/d/readme.txt"} | state
    )
    # Flow-state names inside a drop are an uploader's files: invalid, with the reason, unread.
    assert all("named like the flow's own state" in reasons[uri] for uri in state)
    assert reasons["/d/4_mask.png"] == "mask without image"
    assert "not a scene file" in reasons["/d/readme.txt"]
