"""The promotion registry: one pointer file that says which model inference uses.

``<root>/models/promoted.json`` names the promoted model (architecture, version, URI, the score
it won with, and the model it replaced). Inference reads only this pointer, so switching models
is one small atomic write (``storage.write_text``: rename locally, object finalize on GCS), and
readers see the old pointer or the new one, never half of either.

The pointer never names a missing model: :func:`promote_if_better` first checks that the
candidate's ``model.keras`` exists and records its size and sha256. A promoted model that has
disappeared since (deleted, bucket lifecycle) is an error naming it for inference
(:func:`promoted_model`), and no obstacle for training: a missing promoted model counts as no
model, so the next training run promotes its best candidate.

A candidate replaces the promoted model only when its validation mIoU is strictly higher. Train
flows compare on equal footing where they can: they re-evaluate the promoted model on the same
validation scenes and pass that as ``current_score`` (the pointer's stored score was measured on
whatever validation set existed when it was promoted). The read-compare-write is not a
transaction, so the ``train`` deployment runs with a concurrency limit of 1.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from flows.layout import Layout, model_version
from pipelines.core.naming import MODEL_FILE
from pipelines.io import integrity, storage

SCORE_KEY = "val_miou"
REQUIRED_KEYS: tuple[str, ...] = ("arch", "version", "model_uri", SCORE_KEY)


def read_promoted(root: str) -> dict[str, Any] | None:
    """The promoted model's pointer, or ``None`` before anything was ever promoted."""
    uri = Layout(root).promoted_pointer
    if not storage.exists(uri):
        return None
    return json.loads(storage.read_text(uri))


class PromotedModelMissingError(FileNotFoundError):
    """``promoted.json`` names a model whose file is gone."""


def model_file(model_uri: str) -> str:
    """The ``model.keras`` of a model folder (or the file itself when given one)."""
    return model_uri if model_uri.endswith(".keras") else storage.join(model_uri, MODEL_FILE)


def missing_reason(pointer: dict[str, Any]) -> str | None:
    """Why the pointer's model cannot be used (its file is gone); None when it is there.

    An existence check, not a checksum: the model loader verifies the file when it reads it
    (``safe_mode``, "corrupt model file …"), and hashing it on every read would be slow.
    """
    uri = str(pointer.get("model_uri") or "")
    path = model_file(uri) if uri else "(no model_uri)"
    if not uri or not storage.exists(path):
        return f"{path} does not exist"
    return None


def promoted_model(root: str) -> dict[str, Any] | None:
    """The promoted pointer, after checking its model is present; None before any promotion.

    Raises :class:`PromotedModelMissingError` naming the model and what to do when its file
    has disappeared.
    """
    pointer = read_promoted(root)
    if pointer is None:
        return None
    reason = missing_reason(pointer)
    if reason is not None:
        raise PromotedModelMissingError(
            f"the promoted model {pointer.get('model_version')} is missing: {reason}; run the "
            f"train flow (or `landcover train` and promote) to promote another, or restore it"
        )
    return pointer


def _score(candidate: dict[str, Any]) -> float:
    missing = [key for key in REQUIRED_KEYS if candidate.get(key) in (None, "")]
    if missing:
        raise ValueError(f"candidate model lacks {', '.join(missing)}: {candidate!r}")
    score = float(candidate[SCORE_KEY])
    if not math.isfinite(score):
        raise ValueError(f"candidate {candidate['arch']} has a non-finite {SCORE_KEY}: {score}")
    return score


def is_better(candidate_score: float, current_score: float | None) -> bool:
    """Strictly better wins; the first model ever wins by default."""
    return current_score is None or candidate_score > current_score


def promote_if_better(
    root: str,
    candidate_metadata: dict[str, Any],
    *,
    current_score: float | None = None,
    force: bool = False,
) -> bool:
    """Point ``models/promoted.json`` at the candidate if it beats the promoted model.

    ``candidate_metadata`` needs ``arch``, ``version``, ``model_uri`` and ``val_miou``; other
    keys (``evaluated_on``, ``per_class_iou``…) are kept in the pointer for people to read.
    ``current_score`` overrides the promoted model's stored score (see the module docstring).
    ``force`` promotes a candidate that does not beat it (``landcover promote --force``); the
    pointer then says so (``forced``). Returns whether the candidate was promoted.
    """
    score = _score(candidate_metadata)
    path = model_file(str(candidate_metadata["model_uri"]))
    if not storage.exists(path):
        raise FileNotFoundError(f"refusing to promote {candidate_metadata['arch']}: no {path}")
    size, sha256 = integrity.digest_of(path)
    current = read_promoted(root)
    gone = None if current is None else missing_reason(current)
    if current is not None and current_score is None:
        current_score = float(current[SCORE_KEY])
    if current is None or gone is not None:
        current_score = None  # nothing usable to beat: a vanished model must not block a new one
    if not force and not is_better(score, current_score):
        return False
    pointer = {
        **{k: v for k, v in candidate_metadata.items() if k != "previous"},
        SCORE_KEY: score,
        "model_size": size,
        "model_sha256": sha256,
        "model_version": model_version(candidate_metadata["arch"], candidate_metadata["version"]),
        "promoted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "forced": force and not is_better(score, current_score),
        "previous": None
        if current is None
        else {
            "arch": current["arch"],
            "version": current["version"],
            "model_uri": current["model_uri"],
            SCORE_KEY: current_score,
            "missing": gone,
        },
    }
    integrity.atomic_write(
        Layout(root).promoted_pointer, json.dumps(pointer, indent=2, default=str)
    )
    return True
