"""The drop receipt: deliveries are merged in, never dropped; journals round-trip."""

from __future__ import annotations

import json

from flows.drops.receipt import Delivery, Journal, Move, Receipt, merge, pending_follow_up


def delivery(delivery_id: str, *names: str, kind: str = "raw") -> Delivery:
    files = [
        {"from": f"/d/{n}", "to": f"/r/{n}", "kind": kind, "scene_id": n[:1], "reason": ""}
        for n in names
    ]
    return Delivery(delivery_id, None, "t0", "t1", files)


def test_merge_adds_deliveries_and_never_drops_what_was_there() -> None:
    first = merge(Receipt("/d"), [delivery("e1", "1_sat.jpg", "1_mask.png")])
    second = merge(first, [delivery("e2", "2_sat.jpg", kind="incoming")])
    assert [d.delivery_id for d in second.deliveries] == ["e1", "e2"]
    # The same delivery again, with less: nothing is lost.
    third = merge(second, [delivery("e1")])
    assert third.file_count() == 3
    body = json.loads(third.to_json())
    assert body["labeled"] == ["1"] and body["unlabeled"] == ["2"]


def test_merge_adds_files_and_follow_ups_to_a_known_delivery_once() -> None:
    old = merge(Receipt("/d"), [delivery("e1", "1_sat.jpg")])
    more = delivery("e1", "1_sat.jpg", "1_mask.png")
    more.follow_ups["training"] = {"action": "recorded"}
    merged = merge(old, [more, more])
    only = merged.get("e1")
    assert only is not None and len(only.files) == 2
    assert only.follow_ups == {"training": {"action": "recorded"}}
    assert pending_follow_up(merged, "training", "raw") == []
    assert pending_follow_up(old, "training", "raw")[0].delivery_id == "e1"


def test_receipt_and_journal_round_trip() -> None:
    receipt = merge(Receipt("/d"), [delivery("e1", "1_sat.jpg")])
    again = Receipt.from_json(receipt.to_json(), "/d")
    assert again.deliveries[0].to_dict() == receipt.deliveries[0].to_dict()
    journal = Journal("e1", "ev", "t0", (Move("/d/x", "/r/x", "rejected", "", "why"),))
    assert Journal.from_json(journal.to_json()) == journal


def test_a_legacy_receipt_becomes_one_delivery_with_its_follow_ups_done() -> None:
    legacy = {
        "drop": "/d",
        "labeled": ["1"],
        "unlabeled": ["2"],
        "invalid": [{"uri": "/r/x.txt", "reason": "not a scene file"}],
    }
    receipt = Receipt.from_json(json.dumps(legacy), "/d")
    (only,) = receipt.deliveries
    assert only.labeled == ["1"] and only.unlabeled == ["2"]
    assert only.rejected[0]["reason"] == "not a scene file"
    assert pending_follow_up(receipt, "training", "raw") == []
