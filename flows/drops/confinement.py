"""The drop's trust boundary: where a drop's files may go, re-checked just before every move.

Everything inside a drop is untrusted input: whoever can write into ``drops/`` chooses its file
names, their bytes, and whether they are files at all. The flow's own state lives in the root's
``state/`` (:meth:`flows.layout.Layout.drop_state`), and a move, whether just planned or read
back from a killed run's journal, runs only if :func:`breach` finds nothing wrong with it:

- its **source** is a file of this drop: ``<drop>/<name>`` with no empty, ``.`` or ``..``
  segment; locally one whose folder, symlinks resolved, is the drop folder, and not a symbolic
  link unless it goes to ``rejected/`` (the link itself is moved there, never its target's
  bytes: a link's target lies outside the drop);
- its **destination** is in the folder its kind names, ``raw/``, ``incoming/`` or
  ``rejected/<drop>/``, under the planned name: for ``raw/`` and ``incoming/`` the source's
  own name (up to case and Unicode form: the spelling a scene already has there), and only for
  scene files (``raw/``: images and masks, ``incoming/``: images); for ``rejected/<drop>/`` the
  source's normalised name or its :func:`unsafe_name` stand-in. One safe name, never a path
  (no ``..``, no absolute path, no other bucket or root), and locally never onto a symlink.

A move that fails is not run: its source stays in the drop, where the next round plans it
afresh, and the reason is logged.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from flows.drops.receipt import JOURNAL_NAME, RECEIPT_NAME, Move
from flows.layout import Layout
from pipelines.core.naming import mask_id_of, scene_id_of
from pipelines.core.uris import case_key, confine, normalize_name


@dataclass(frozen=True)
class DropPlace:
    """Where a drop is, where its files may go, and where its state is kept."""

    source: str  # the drop folder / prefix
    drop_id: str  # its name under rejected/
    layout: Layout

    @property
    def rejected_dir(self) -> str:
        return self.layout.rejected(self.drop_id)

    def rejected(self, name: str) -> str:
        return confine(self.rejected_dir, name)

    @property
    def state_dir(self) -> str:
        return self.layout.drop_state(self.source)

    @property
    def journal_uri(self) -> str:
        return confine(self.state_dir, JOURNAL_NAME)

    @property
    def receipt_uri(self) -> str:
        return confine(self.state_dir, RECEIPT_NAME)


def unsafe_name(name: str) -> str:
    """A dead-letter name for a file whose own name is refused (it is not reused anywhere)."""
    return "unsafe-name-" + hashlib.sha256(name.encode("utf-8", "replace")).hexdigest()[:16]


def is_local_link(uri: str) -> bool:
    """A local symbolic link (GCS has none)."""
    return "://" not in uri and os.path.islink(uri)


def _source_breach(place: DropPlace, move: Move) -> str | None:
    base = place.source.rstrip("/")
    if not move.source.startswith(base + "/"):
        return f"source {move.source!r} is not in this drop ({base})"
    name = move.source[len(base) + 1 :]
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        return f"source {move.source!r} has an empty, '.' or '..' segment"
    if "://" in base:
        return None
    if os.path.realpath(os.path.dirname(move.source)) != os.path.realpath(base):
        return f"source {move.source!r} resolves outside this drop"
    if is_local_link(move.source) and move.kind != "rejected":
        return f"source {move.source!r} is a symbolic link (its target is not the drop's)"
    return None


def _planned_names(source_name: str, kind: str) -> tuple[set[str], str | None]:
    """(names a destination of ``kind`` may have, or why the source may not go there)."""
    try:
        normalized = normalize_name(source_name)
    except ValueError:
        normalized = None
    if kind == "rejected":
        return {n for n in (normalized, unsafe_name(source_name)) if n}, None
    if normalized is None or "/" in normalized:
        return set(), f"{source_name!r} is not one safe file name"
    if kind == "incoming" and not scene_id_of(normalized):
        return set(), f"incoming/ takes scene images only, not {normalized!r}"
    if kind == "raw" and not (scene_id_of(normalized) or mask_id_of(normalized)):
        return set(), f"raw/ takes scene images and masks only, not {normalized!r}"
    return {normalized}, None


def breach(place: DropPlace, move: Move) -> str | None:
    """Why ``move`` must not run; None when it stays inside the drop's confinement."""
    problem = _source_breach(place, move)
    if problem:
        return problem
    folders = {
        "raw": place.layout.raw,
        "incoming": place.layout.incoming,
        "rejected": place.rejected_dir,
    }
    folder = folders.get(move.kind)
    if folder is None:
        return f"unknown kind {move.kind!r}"
    parent, _, dest_name = move.destination.rpartition("/")
    if parent != folder.rstrip("/"):
        return f"destination {move.destination!r} is not directly in {folder}"
    try:
        if normalize_name(dest_name) != dest_name or "/" in dest_name:
            raise ValueError("not in normal form")
    except ValueError as error:
        return f"destination name {dest_name!r} is not one safe name ({error})"
    source_name = move.source[len(place.source.rstrip("/")) + 1 :]  # checked above: inside
    allowed, why = _planned_names(source_name, move.kind)
    if why:
        return why
    if move.kind == "rejected":
        matches = dest_name in allowed
    else:  # the spelling a scene already has there may differ by case / Unicode form
        matches = any(case_key(dest_name) == case_key(n) for n in allowed)
    if not matches:
        return f"destination name {dest_name!r} is not the planned name for {source_name!r}"
    if is_local_link(move.destination):
        return f"destination {move.destination!r} is a symbolic link"
    return None
