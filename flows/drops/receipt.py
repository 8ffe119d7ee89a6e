"""A drop's receipt and its journal: what each delivery moved where, merged, never shrunk.

A drop folder may be delivered more than once: the same event again (Pub/Sub delivers at least
once), a retry after a crash, late files closed by a new ``_DONE`` marker. Each delivery that
moved something is one entry in the drop's receipt, keyed by its delivery id (the event id,
else the marker's generation / modification stamp). The receipt is only ever merged into
(:func:`merge`): entries and follow-ups are added, never removed, so a re-delivery can not
rewrite it with less.

Before a delivery moves anything it writes its plan, the journal. A run killed half-way leaves
the journal; the next run finishes exactly those moves (each one idempotent, each re-checked
against its confinement before it runs) and records them, so the receipt ends complete whatever
the crash point.

Both live in the root's ``state/drops/<drop key>/`` (:meth:`flows.layout.Layout.drop_state`),
never in the drop: a drop is untrusted input, and a journal found there would let an uploader
choose what gets moved where. Files in a drop named like the flow's state, today's names or
those of earlier versions (:data:`FLOW_STATE_NAMES`), are rejected as input.

Pure data: no I/O, no Prefect (the flow reads and writes these with the storage layer).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RECEIPT_SCHEMA_VERSION = 2
RECEIPT_NAME = "receipt.json"
JOURNAL_NAME = "journal.json"
# Where earlier versions kept the receipt and the journal: inside the drop. Found in a drop now,
# they are an uploader's files (a forged journal would name any source and destination).
LEGACY_RECEIPT_NAME = "_PROCESSED.json"
LEGACY_JOURNAL_NAME = "_PENDING.json"
# The local watcher's state, once kept in the watched folder.
LEGACY_WATCHER_STATE_NAME = ".landcover-watcher.json"
FLOW_STATE_NAMES = frozenset(
    {
        RECEIPT_NAME,
        JOURNAL_NAME,
        LEGACY_RECEIPT_NAME,
        LEGACY_JOURNAL_NAME,
        LEGACY_WATCHER_STATE_NAME,
    }
)
# Where a moved file went: training input, inference input, or the dead-letter folder.
KINDS = ("raw", "incoming", "rejected")
# Follow-ups a delivery may call for, recorded once done so a re-run does not repeat them.
FOLLOW_UPS = ("training", "inference")


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Move:
    """One planned move of a drop file; ``reason`` is set for rejected files."""

    source: str
    destination: str
    kind: str
    scene_id: str = ""
    reason: str = ""

    def to_dict(self) -> dict[str, str]:
        return {
            "from": self.source,
            "to": self.destination,
            "kind": self.kind,
            "scene_id": self.scene_id,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Move:
        kind = str(data["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown move kind {kind!r}")
        return cls(
            source=str(data["from"]),
            destination=str(data["to"]),
            kind=kind,
            scene_id=str(data.get("scene_id") or ""),
            reason=str(data.get("reason") or ""),
        )


@dataclass(frozen=True)
class Journal:
    """The plan of one delivery, written before its first move."""

    delivery_id: str
    event_id: str | None
    started_at: str
    moves: tuple[Move, ...]

    def to_json(self) -> str:
        body = {
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "started_at": self.started_at,
            "moves": [m.to_dict() for m in self.moves],
        }
        return json.dumps(body, indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Journal:
        data = json.loads(text)
        return cls(
            delivery_id=str(data["delivery_id"]),
            event_id=data.get("event_id"),
            started_at=str(data["started_at"]),
            moves=tuple(Move.from_dict(m) for m in data["moves"]),
        )


@dataclass
class Delivery:
    """What one delivery did: every file moved (with its checksum) and every reject's reason."""

    delivery_id: str
    event_id: str | None
    started_at: str
    finished_at: str
    files: list[dict[str, Any]] = field(default_factory=list)
    follow_ups: dict[str, Any] = field(default_factory=dict)

    @property
    def labeled(self) -> list[str]:
        return sorted({f["scene_id"] for f in self.files if f["kind"] == "raw" and f["scene_id"]})

    @property
    def unlabeled(self) -> list[str]:
        return sorted(
            {f["scene_id"] for f in self.files if f["kind"] == "incoming" and f["scene_id"]}
        )

    @property
    def rejected(self) -> list[dict[str, Any]]:
        return [f for f in self.files if f["kind"] == "rejected"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "files": self.files,
            "labeled": self.labeled,
            "unlabeled": self.unlabeled,
            "follow_ups": self.follow_ups,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        return cls(
            delivery_id=str(data["delivery_id"]),
            event_id=data.get("event_id"),
            started_at=str(data.get("started_at") or ""),
            finished_at=str(data.get("finished_at") or ""),
            files=[dict(f) for f in data.get("files") or []],
            follow_ups=dict(data.get("follow_ups") or {}),
        )


@dataclass
class Receipt:
    """Every delivery of one drop, oldest first."""

    drop: str
    deliveries: list[Delivery] = field(default_factory=list)

    def get(self, delivery_id: str) -> Delivery | None:
        return next((d for d in self.deliveries if d.delivery_id == delivery_id), None)

    def file_count(self) -> int:
        return sum(len(d.files) for d in self.deliveries)

    def to_json(self) -> str:
        body = {
            "schema_version": RECEIPT_SCHEMA_VERSION,
            "drop": self.drop,
            "deliveries": [d.to_dict() for d in self.deliveries],
            # Totals over every delivery, for people reading the file.
            "labeled": sorted({s for d in self.deliveries for s in d.labeled}),
            "unlabeled": sorted({s for d in self.deliveries for s in d.unlabeled}),
            "rejected": [
                {"uri": f["to"], "reason": f["reason"]} for d in self.deliveries for f in d.rejected
            ],
            "updated_at": now(),
        }
        return json.dumps(body, indent=1, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, drop: str) -> Receipt:
        """Parse a receipt; a pre-versioned one (one flat delivery) becomes delivery "legacy"."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("receipt is not a JSON object")
        if "deliveries" not in data:
            files = [
                {"from": "", "to": "", "kind": kind, "scene_id": s, "reason": "", "size": None}
                for kind, key in (("raw", "labeled"), ("incoming", "unlabeled"))
                for s in data.get(key) or []
            ]
            files += [
                {"from": "", "to": e["uri"], "kind": "rejected", "scene_id": "", "size": None}
                | {"reason": e["reason"]}
                for e in data.get("invalid") or []
            ]
            legacy = Delivery("legacy", None, "", "", files, {f: "legacy" for f in FOLLOW_UPS})
            return cls(drop=str(data.get("drop") or drop), deliveries=[legacy])
        return cls(
            drop=str(data.get("drop") or drop),
            deliveries=[Delivery.from_dict(d) for d in data["deliveries"]],
        )


def merge(old: Receipt, new: Iterable[Delivery]) -> Receipt:
    """``old`` with ``new`` deliveries added; a known delivery only gains files and follow-ups.

    Nothing in ``old`` is ever dropped: that is what makes a re-delivered event, or two runs
    racing on one drop, unable to rewrite the receipt with less than it had.
    """
    deliveries = [Delivery.from_dict(d.to_dict()) for d in old.deliveries]
    by_id = {d.delivery_id: d for d in deliveries}
    for delivery in new:
        known = by_id.get(delivery.delivery_id)
        if known is None:
            copy = Delivery.from_dict(delivery.to_dict())
            deliveries.append(copy)
            by_id[copy.delivery_id] = copy
            continue
        seen = {(f["from"], f["to"]) for f in known.files}
        known.files += [f for f in delivery.files if (f["from"], f["to"]) not in seen]
        for key, value in delivery.follow_ups.items():
            known.follow_ups.setdefault(key, value)
        known.finished_at = max(known.finished_at, delivery.finished_at)
    return Receipt(drop=old.drop, deliveries=deliveries)


def pending_follow_up(receipt: Receipt, follow_up: str, kind: str) -> list[Delivery]:
    """Deliveries that brought ``kind`` files and have not had ``follow_up`` done yet."""
    return [
        d
        for d in receipt.deliveries
        if follow_up not in d.follow_ups and any(f["kind"] == kind for f in d.files)
    ]
