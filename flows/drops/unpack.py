"""Unpacking one drop into the data root without losing, replacing or double-moving anything.

The ``imagery-drop`` flow calls :func:`unpack` while it holds the root's drop lock
(:mod:`pipelines.io.locks`), so two deliveries for one root never plan or move at once. One
round of unpacking:

1. finishes the journal a killed run left in the drop's state folder
   (``<root>/state/drops/<drop key>/``, :mod:`flows.drops.receipt`), if any;
2. lists the drop; every name is normalised and confined (:mod:`pipelines.core.uris`): a name
   that is a path trick, nested, or differs from another only by case is dead-lettered, and so
   is a file named like the flow's state (:mod:`flows.drops.plan`) or a symbolic link;
3. decodes each scene (:func:`flows.tasks.validate_scenes`), and compares each id with what
   ``raw/`` or ``incoming/`` already hold under any case: identical content is an idempotent
   re-delivery, different content is quarantined in ``rejected/<drop>/`` with the reason
   (a labeled pair goes together), never written over;
4. writes the plan as the journal, performs each move with
   :func:`pipelines.io.integrity.verified_move` (copy, re-read size and sha256, delete the
   source) after re-checking it against the drop's confinement
   (:func:`flows.drops.confinement.breach`) and that this run still holds the lock, merges the
   delivery into the receipt and removes the journal and the marker.

Files that arrive while a round runs are picked up by the next round of the same run.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Sequence

from prefect import get_run_logger

from flows import tasks
from flows.drops.confinement import DropPlace, breach, is_local_link, unsafe_name
from flows.drops.events import DROP_MARKER
from flows.drops.plan import RESERVED_NAMES, plan_drop, scene_conflicts
from flows.drops.receipt import Delivery, Journal, Move, Receipt, merge, now
from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import mask_id_of, scene_id_of
from pipelines.core.uris import case_collisions, case_key, confine, normalize_name
from pipelines.io import integrity, storage

__all__ = ["ERRORS_NAME", "MAX_ROUNDS", "STAGE", "DropPlace", "read_receipt", "unpack"]

STAGE = "imagery-drop"
ERRORS_NAME = "errors.jsonl"
# Rounds per run: files still arriving after this many wait for the next delivery.
MAX_ROUNDS = 5


LINK_PREFIX = "a symbolic link"
LINK_REASON = LINK_PREFIX + " (to {target!r}): drops take regular files; the link was moved"
# Called before every move: raises when this run must stop (its lock was taken over).
Guard = Callable[[], None]


def _no_guard() -> None:
    return None


def marker_stamp(source: str) -> str | None:
    """The drop marker's identity: its GCS generation, or its local modification time (ns)."""
    marker = storage.join(source, DROP_MARKER)
    if storage.is_remote(marker):
        found = integrity.gcs_blob(marker).bucket.get_blob(integrity.gcs_blob(marker).name)
        return None if found is None else f"generation:{found.generation}"
    try:
        return f"mtime_ns:{os.stat(marker).st_mtime_ns}"
    except FileNotFoundError:
        return None


def read_receipt(place: DropPlace) -> Receipt:
    """The drop's receipt; an unreadable one is kept aside (never overwritten) and reported."""
    uri = place.receipt_uri
    if not storage.exists(uri):
        return Receipt(drop=place.source)
    text = storage.read_bytes(uri)
    try:
        return Receipt.from_json(text, place.source)
    except (ValueError, KeyError, TypeError) as error:
        aside = storage.join(place.state_dir, f"unreadable-receipt-{uuid.uuid4().hex[:8]}.json")
        integrity.verified_copy(uri, aside)
        get_run_logger().warning(
            "receipt %s is unreadable (%s); kept as %s, starting a new one", uri, error, aside
        )
        return Receipt(drop=place.source)


def write_receipt(place: DropPlace, deliveries: Sequence[Delivery]) -> Receipt:
    """Merge ``deliveries`` into the stored receipt (re-read now) and write it atomically."""
    merged = merge(read_receipt(place), deliveries)
    integrity.atomic_write(place.receipt_uri, merged.to_json())
    return merged


def _existing_by_key(folder: str) -> dict[str, str]:
    return {case_key(name): name for name, _ in tasks.list_files.fn(folder)}


def plan_moves(place: DropPlace, names: Sequence[str]) -> list[Move]:
    """Every listed file's destination: raw/, incoming/ or rejected/ (with the reason)."""
    moves: list[Move] = []
    safe: dict[str, str] = {}  # source uri → its normalised name
    for name in names:
        uri = storage.join(place.source, name)
        try:
            normalized = normalize_name(name)
            if "/" in normalized:
                raise ValueError(f"nested object {name!r}: a drop is one flat folder")
        except ValueError as error:
            moves.append(Move(uri, place.rejected(unsafe_name(name)), "rejected", "", str(error)))
            continue
        if is_local_link(uri):
            reason = LINK_REASON.format(target=os.readlink(uri))
            moves.append(Move(uri, place.rejected(normalized), "rejected", _id_of(name), reason))
            continue
        safe[uri] = normalized
    collided = {n for group in case_collisions(safe.values()) for n in group}
    for uri, name in list(safe.items()):
        if name in collided:
            reason = "another file of this drop has the same name up to case or Unicode form"
            moves.append(Move(uri, place.rejected(name), "rejected", _id_of(name), reason))
            del safe[uri]

    plan = plan_drop(list(safe))
    checked = tasks.validate_scenes(plan.pairs, plan.images)
    rejected = [*plan.invalid, *(tuple(e) for e in checked["errors"])]
    moves += [
        Move(uri, place.rejected(safe[uri]), "rejected", _id_of(safe[uri]), reason)
        for uri, reason in rejected
    ]
    raw, incoming = _existing_by_key(place.layout.raw), _existing_by_key(place.layout.incoming)
    for scene_id, image, mask in checked["pairs"]:
        moves += _moves_into(place, "raw", raw, scene_id, [image, mask], safe)
    for scene_id, image in checked["images"]:
        moves += _moves_into(place, "incoming", incoming, scene_id, [image], safe)
    return moves


def _id_of(name: str) -> str:
    return scene_id_of(name) or mask_id_of(name) or ""


def _moves_into(
    place: DropPlace,
    kind: str,
    existing: dict[str, str],
    scene_id: str,
    uris: Sequence[str],
    safe: dict[str, str],
) -> list[Move]:
    """Moves of one scene's files into ``kind``'s folder, or all to quarantine on a conflict.

    A file whose name (up to case/Unicode form) exists there must hold the same bytes; if one
    file differs, the whole scene is quarantined so a pair never ends half old, half new.
    """
    folder = getattr(place.layout, kind)
    targets = []
    conflicts = scene_conflicts(existing.values(), [safe[u] for u in uris])
    for uri in uris:
        name = existing.get(case_key(safe[uri]), safe[uri])
        target = confine(folder, name)
        if storage.exists(target):
            (src_size, src_sha), (dst_size, dst_sha) = (
                integrity.digest_of(uri),
                integrity.digest_of(target),
            )
            if (src_size, src_sha) != (dst_size, dst_sha):
                conflicts.append(
                    f"{name} already in {kind}/ with different content "
                    f"(sha256 {dst_sha[:12]}…, incoming {src_sha[:12]}…)"
                )
        targets.append(target)
    if conflicts:
        reason = f"scene id {scene_id} conflicts, quarantined, {kind}/ kept: " + "; ".join(
            conflicts
        )
        return [Move(u, place.rejected(safe[u]), "rejected", scene_id, reason) for u in uris]
    return [Move(u, t, kind, scene_id) for u, t in zip(uris, targets, strict=True)]


def perform(place: DropPlace, journal: Journal, guard: Guard = _no_guard) -> Delivery:
    """Carry out a journal's moves (each idempotent) and say what happened to every file.

    Each move is re-checked against the drop's confinement just before it runs; one that
    fails is skipped (its source, if it is the drop's, stays for the next round to re-plan).
    ``guard`` runs first each time and stops the run by raising (the lock was taken over).
    """
    logger = get_run_logger()
    files = []
    for move in journal.moves:
        guard()
        problem = breach(place, move)
        if problem is not None:
            logger.error(
                "refused a planned move %s → %s: %s", move.source, move.destination, problem
            )
            continue
        files.append(_perform_one(place, journal.delivery_id, move))
    delivery = Delivery(journal.delivery_id, journal.event_id, journal.started_at, now(), files)
    _append_errors(place, delivery)
    return delivery


def _redirect(place: DropPlace, delivery_id: str, move: Move) -> str:
    """Second choice for a file whose destination turned out to hold other bytes."""
    tag = hashlib.sha256(delivery_id.encode("utf-8")).hexdigest()[:12]
    folder = confine(place.rejected_dir, f"delivery-{tag}")
    return confine(folder, move.destination.rsplit("/", 1)[-1])


def _is_link_move(move: Move) -> bool:
    if "://" in move.source:
        return False
    if os.path.lexists(move.source):
        return os.path.islink(move.source)
    return move.reason.startswith(LINK_PREFIX)  # moved already by an earlier, killed attempt


def _move_link(move: Move) -> dict[str, object]:
    """Move a symbolic link itself (never its target's bytes) into ``rejected/``; idempotent."""
    record: dict[str, object] = {**move.to_dict(), "size": None, "sha256": None}
    try:
        target = os.readlink(move.source)
    except FileNotFoundError:  # moved by an earlier, killed attempt
        if not is_local_link(move.destination):
            record["reason"] = "source vanished before it was moved; nothing at the destination"
        return record
    os.makedirs(os.path.dirname(move.destination), exist_ok=True)
    try:
        os.symlink(target, move.destination)
    except FileExistsError:
        if not is_local_link(move.destination) or os.readlink(move.destination) != target:
            raise
    os.remove(move.source)
    return record


def _perform_one(place: DropPlace, delivery_id: str, move: Move) -> dict[str, object]:
    if move.kind == "rejected" and _is_link_move(move):
        return _move_link(move)
    record: dict[str, object] = dict(move.to_dict())
    second = _redirect(place, delivery_id, move)
    try:
        size, sha = integrity.verified_move(move.source, move.destination)
    except integrity.ConflictError as conflict:
        record["to"], record["kind"] = second, "rejected"
        record["reason"] = (
            (move.reason + "; " if move.reason else "")
            + f"{move.destination} appeared with different content meanwhile "
            f"(sha256 {conflict.dst_sha256[:12]}…): quarantined instead"
        )
        size, sha = integrity.verified_move(move.source, second)
    except FileNotFoundError:
        # An earlier, killed attempt moved it already: find where, and record it.
        landed = next((d for d in (move.destination, second) if storage.exists(d)), None)
        if landed is None:
            record.update(kind="rejected", size=None, sha256=None)
            record["reason"] = "source vanished before it was moved; nothing at the destination"
            return record
        record["to"] = landed
        size, sha = integrity.digest_of(landed)
    record.update(size=size, sha256=sha)
    return record


def _append_errors(place: DropPlace, delivery: Delivery) -> None:
    """Add the delivery's rejects to ``rejected/<drop>/errors.jsonl`` (lines only ever added)."""
    lines = [
        ErrorRecord(
            uri=str(f["to"]),
            reason=f"{f['reason']} (dropped as {f['from']})",
            stage=STAGE,
            scene_id=str(f["scene_id"]),
        ).to_json()
        for f in delivery.rejected
    ]
    if not lines:
        return
    uri = storage.join(place.rejected_dir, ERRORS_NAME)
    old = storage.read_text(uri).splitlines() if storage.exists(uri) else []
    merged = old + [line for line in lines if line not in set(old)]
    if merged != old:
        integrity.atomic_write(uri, "\n".join(merged) + "\n")


def drop_files(place: DropPlace) -> list[str]:
    """The drop's file names, its marker aside (everything else is input to judge)."""
    return [n for n, _ in tasks.list_files.fn(place.source) if n not in RESERVED_NAMES]


def delivery_id_for(
    receipt: Receipt, event_id: str | None, stamp: str | None, names: Sequence[str]
) -> str:
    """The event id, else the marker's stamp, else (late files) a digest of the names."""
    for candidate in (event_id, stamp and f"marker:{stamp}"):
        if candidate and receipt.get(candidate) is None:
            return candidate
    digest = hashlib.sha256("\n".join(sorted(names)).encode("utf-8")).hexdigest()[:16]
    return f"late:{now()}:{digest}"


def left_over_journal(place: DropPlace) -> Journal | None:
    """The journal of a run that stopped half-way; an unreadable one is kept aside, not run."""
    uri = place.journal_uri
    if not storage.exists(uri):
        return None
    text = storage.read_bytes(uri)
    try:
        return Journal.from_json(text)
    except (ValueError, KeyError, TypeError) as error:
        aside = storage.join(place.state_dir, f"unreadable-journal-{uuid.uuid4().hex[:8]}.json")
        integrity.verified_move(uri, aside)
        get_run_logger().warning(
            "journal %s is unreadable (%s); kept as %s, re-planning the drop", uri, error, aside
        )
        return None


def unpack(place: DropPlace, event_id: str | None, guard: Guard = _no_guard) -> list[Delivery]:
    """Finish a left-over journal, then unpack what the drop holds; the deliveries made."""
    logger = get_run_logger()
    journal_uri = place.journal_uri
    deliveries = []
    journal = left_over_journal(place)
    if journal is not None:
        logger.warning("finishing delivery %s of a run that stopped half-way", journal.delivery_id)
        deliveries.append(perform(place, journal, guard))
        write_receipt(place, deliveries[-1:])
        integrity.delete_object(journal_uri)
    stamp = marker_stamp(place.source)
    for _ in range(MAX_ROUNDS):
        names = drop_files(place)
        if not names:
            break
        receipt = read_receipt(place)
        delivery_id = delivery_id_for(receipt, event_id, stamp, names)
        moves = tuple(plan_moves(place, names))
        journal = Journal(delivery_id, event_id, now(), moves)
        integrity.atomic_write(journal_uri, journal.to_json())
        deliveries.append(perform(place, journal, guard))
        write_receipt(place, deliveries[-1:])
        integrity.delete_object(journal_uri)
        stamp = None
    if stamp is not None or marker_stamp(place.source) is not None:
        integrity.delete_object(storage.join(place.source, DROP_MARKER))
    return deliveries
