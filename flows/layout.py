"""Where everything lives under one root URI (the data layout), and input fingerprints.

```
<root>/raw/{id}_sat.jpg, {id}_mask.png          labeled scenes (training input)
<root>/incoming/{id}_sat.*                       unlabeled scenes waiting for inference
<root>/drops/<drop>/… + _DONE                    the local drop folder the watcher watches
<root>/rejected/<drop>/…, errors.jsonl           files of a drop that failed validation
<root>/records/<dataset>/CURRENT, versions/<id>/  a dataset: its published version holds the
                                                 shards, errors/ and manifest.json
<root>/records/<dataset>/fingerprint.json        the inputs + options it was made from
<root>/models/<arch>/<version>/model.keras, metadata.json
<root>/models/promoted.json                      pointer to the promoted model (registry.py)
<root>/predictions/<model version>/{id}_mask.png
<root>/changes/<model version>/<run>/…         change maps, from→to matrices, summary table
<root>/reports/<run>/…                           metrics.json, pictures, report.md per run
<root>/state/                                    the flows' own state; uploaders never write here
<root>/state/retrain-due.json                    drops waiting for a training run
<root>/state/locks/*.lock                        leases of runs in progress (drops, inference)
<root>/state/drops/<drop key>/receipt.json       what each delivery of a drop moved where
<root>/state/drops/<drop key>/journal.json       the plan of a delivery while it runs
<root>/state/watcher.json                        drops the local watcher has announced
```

``state/`` is the one home of the flows' bookkeeping. Nothing in it is read from a drop: a drop
is untrusted input (whoever can write into ``drops/`` must not be able to steer a move), so a
file in a drop named like flow state is rejected as input (:mod:`flows.drops.plan`).

Drops are kept apart from ``incoming/``: a drop is unpacked by the ``imagery-drop`` flow, which
moves labeled pairs into ``raw/`` and unlabeled scenes into ``incoming/`` (a flat folder that
batch inference globs in one level, locally and on GCS alike).

Which folder *is* the dataset has one answer, :func:`pipelines.io.records.resolve_dataset`:
:meth:`Layout.records` is the dataset's root (what preprocessing writes into and training is
given), and its readers (training's data check, the train flow's up-to-date check) resolve it
to the published version there.

Every path is built with ``pipelines.io.storage.join``, so ``root`` may be a local folder or
``gs://bucket/prefix`` and the same flows run on both. The storage layer (Beam) loads on the
first path built, not on import, so light processes (``landcover up``, the drop watcher) can
ask this module where things live.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PROMOTED_POINTER = "promoted.json"
FINGERPRINT_NAME = "fingerprint.json"
RETRAIN_DUE_NAME = "retrain-due.json"
STATE_DIR = "state"
WATCHER_STATE_NAME = "watcher.json"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Layout:
    """The project's folders under ``root`` (a local path or a ``gs://`` URI)."""

    root: str

    def _at(self, *parts: str) -> str:
        from pipelines.io import storage

        return storage.join(self.root, *parts)

    @property
    def raw(self) -> str:
        return self._at("raw")

    @property
    def incoming(self) -> str:
        return self._at("incoming")

    @property
    def drops(self) -> str:
        return self._at("drops")

    def rejected(self, drop_id: str) -> str:
        return self._at("rejected", drop_id)

    def records(self, dataset: str) -> str:
        """The dataset's root (versions + ``CURRENT``; read it through ``resolve_dataset``)."""
        return self._at("records", dataset)

    def fingerprint_file(self, dataset: str) -> str:
        return self._at("records", dataset, FINGERPRINT_NAME)

    @property
    def models(self) -> str:
        return self._at("models")

    def model_dir(self, arch: str, version: str) -> str:
        return self._at("models", arch, version)

    @property
    def promoted_pointer(self) -> str:
        return self._at("models", PROMOTED_POINTER)

    def predictions(self, model_version: str) -> str:
        return self._at("predictions", model_version)

    def changes(self, model_version: str, run: str) -> str:
        """Where a change run over ``predictions/<model version>/`` writes."""
        return self._at("changes", model_version, run)

    def report(self, run: str) -> str:
        return self._at("reports", run)

    @property
    def state(self) -> str:
        """The flows' own bookkeeping (journals, receipts, locks, watcher state)."""
        return self._at(STATE_DIR)

    @property
    def retrain_due(self) -> str:
        return self._at(STATE_DIR, RETRAIN_DUE_NAME)

    def drop_state(self, drop_uri: str) -> str:
        """Where the drop at ``drop_uri`` keeps its receipt and journal.

        Keyed by a readable name plus a digest of the whole URI, so two drops whose names
        sanitise alike (``a/b`` and ``a_b``), or one prefix in two buckets, never share state.
        """
        digest = hashlib.sha256(drop_uri.rstrip("/").encode("utf-8")).hexdigest()[:12]
        tail = drop_uri.rstrip("/").rsplit("/", 1)[-1]
        return self._at(STATE_DIR, "drops", f"{safe_name(tail)}-{digest}")

    @property
    def watcher_state(self) -> str:
        """The local drop watcher's record of the drops it announced."""
        return self._at(STATE_DIR, WATCHER_STATE_NAME)

    @property
    def drop_lock(self) -> str:
        """Held while a drop is unpacked into this root (:mod:`pipelines.io.locks`)."""
        return self._at(STATE_DIR, "locks", "drops.lock")

    def predictions_lock(self, model_version: str) -> str:
        """Held while batch inference writes ``predictions/<model version>/``."""
        return self._at(STATE_DIR, "locks", f"predictions-{safe_name(model_version)}.lock")


def new_run_id(now: dt.datetime | None = None, suffix: str | None = None) -> str:
    """Sortable, unique run id: ``20240601-020000-1a2b3c4d`` (UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%d-%H%M%S}-{suffix or uuid.uuid4().hex[:8]}"


def safe_name(text: str) -> str:
    """A path component from free text (a drop prefix like ``drops/2024-06-01``)."""
    cleaned = _SAFE.sub("_", text.strip("/")).strip("_.")
    return cleaned or "drop"


def model_version(arch: str, version: str) -> str:
    """The name predictions are filed under: one per trained model (arch + training run)."""
    return f"{arch}-{version}"


def fingerprint(files: Iterable[tuple[str, int]], options: Mapping[str, Any]) -> str:
    """Digest of the input file list (relative name, size) and the options of a run.

    Sizes rather than contents: hashing every scene would cost as much as reading the whole
    dataset, while a replaced scene almost always changes size and an added or removed one
    always changes the list. The options are part of it so that a different patch size or
    split gives different records.
    """
    body = json.dumps(
        {"files": sorted([name, int(size)] for name, size in files), "options": dict(options)},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
