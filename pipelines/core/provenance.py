"""What an output was computed from, kept beside it: outputs are keyed by content, not by name.

An output counts as done only when its receipt (``{id}.done.json``) records the same
fingerprint as the run about to skip it: the input's checksum, the model's version and checksum,
and the options that change the output. A changed input or model, or a receipt that is missing,
truncated or garbled, means "not done": recompute. The I/O layer
(:func:`pipelines.io.integrity.verify_outputs`) then checks the files the receipt lists.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipelines.core.uris import normalize_name

# Bump when the receipt's shape changes; readers refuse receipts newer than they understand.
RECORD_SCHEMA_VERSION = 1
# Bump when what goes into :func:`output_fingerprint` changes: every output then recomputes.
FINGERPRINT_VERSION = 1
DONE_SUFFIX = ".done.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def done_name(subject_id: str) -> str:
    """The receipt's file name beside an output: ``123`` → ``123.done.json``."""
    return f"{subject_id}{DONE_SUFFIX}"


def canonical_json(parts: Mapping[str, Any]) -> str:
    """One spelling per value: sorted keys, no whitespace, no NaN (which has no JSON form)."""
    return json.dumps(
        parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def fingerprint(parts: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``parts``; TypeError on values JSON cannot hold."""
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class InputRef:
    """The input an output was computed from; its URI is informative, its checksum decides."""

    uri: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ModelRef:
    """The model an output was computed with."""

    uri: str
    version: str
    sha256: str


@dataclass(frozen=True)
class FileDigest:
    """Size and checksum of one written file."""

    size: int
    sha256: str


def output_fingerprint(source: InputRef, model: ModelRef, options: Mapping[str, Any]) -> str:
    """The fingerprint "skip if done" compares: content, not names or locations.

    URIs are left out on purpose: moving a data root or a model folder does not change an
    output, while new bytes under the same name do.
    """
    return fingerprint(
        {
            "fingerprint_version": FINGERPRINT_VERSION,
            "input_sha256": source.sha256,
            "model": {"version": model.version, "sha256": model.sha256},
            "options": dict(options),
        }
    )


TAG_PREFIX = "LANDCOVER_"


def provenance_tags(
    source: InputRef, model: ModelRef, options: Mapping[str, Any], code_version: str
) -> dict[str, str]:
    """What a predicted raster carries inside itself about where it came from (GDAL tags).

    Content, not locations (as the fingerprint): the model's version and sha256, the input's
    size and sha256, the options, the code version; ``TIFFTAG_SOFTWARE`` names the program.
    """
    return {
        f"{TAG_PREFIX}MODEL_VERSION": model.version,
        f"{TAG_PREFIX}MODEL_SHA256": model.sha256,
        f"{TAG_PREFIX}INPUT_SHA256": source.sha256,
        f"{TAG_PREFIX}INPUT_SIZE": str(source.size),
        f"{TAG_PREFIX}OPTIONS": canonical_json(options),
        f"{TAG_PREFIX}CODE_VERSION": code_version,
        "TIFFTAG_SOFTWARE": f"landcover ({code_version})",
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class OutputRecord:
    """The receipt written next to an output once all its files are written."""

    subject_id: str
    input: InputRef
    model: ModelRef
    options: Mapping[str, Any]
    fingerprint: str
    outputs: Mapping[str, FileDigest]
    summary: Mapping[str, Any] = field(default_factory=dict)
    written_at: str = field(default_factory=_now)
    schema_version: int = RECORD_SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "subject_id": self.subject_id,
                "input": {
                    "uri": self.input.uri,
                    "size": self.input.size,
                    "sha256": self.input.sha256,
                },
                "model": {
                    "uri": self.model.uri,
                    "version": self.model.version,
                    "sha256": self.model.sha256,
                },
                "options": dict(self.options),
                "fingerprint": self.fingerprint,
                "outputs": {
                    name: {"size": d.size, "sha256": d.sha256} for name, d in self.outputs.items()
                },
                "summary": dict(self.summary),
                "written_at": self.written_at,
            },
            sort_keys=True,
            indent=1,
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> OutputRecord:
        """Parse a receipt; ValueError naming the first thing wrong (never another exception).

        Callers treat ValueError as "not done", so a truncated or hand-edited receipt leads to
        a recompute, not a crash.
        """
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
            raise ValueError(f"receipt is not JSON: {exc}") from exc
        obj = _object(data, "receipt")
        version = _int(obj, "schema_version", "receipt")
        if version > RECORD_SCHEMA_VERSION:
            raise ValueError(
                f"receipt schema_version {version} is newer than this code understands "
                f"({RECORD_SCHEMA_VERSION})"
            )
        inp = _object(obj.get("input"), "input")
        mod = _object(obj.get("model"), "model")
        outputs = {}
        for name, digest in _object(obj.get("outputs"), "outputs").items():
            try:
                safe = normalize_name(name)
            except ValueError as exc:
                raise ValueError(f"outputs: {exc}") from exc
            where = f"outputs[{name!r}]"
            entry = _object(digest, where)
            outputs[safe] = FileDigest(_int(entry, "size", where), _sha(entry, "sha256", where))
        written_at = _str(obj, "written_at", "receipt")
        try:
            datetime.fromisoformat(written_at)
        except ValueError as exc:
            raise ValueError(f"receipt.written_at is not an ISO timestamp: {written_at!r}") from exc
        return cls(
            schema_version=version,
            subject_id=_str(obj, "subject_id", "receipt"),
            input=InputRef(
                _str(inp, "uri", "input"), _int(inp, "size", "input"), _sha(inp, "sha256", "input")
            ),
            model=ModelRef(
                _str(mod, "uri", "model"),
                _str(mod, "version", "model"),
                _sha(mod, "sha256", "model"),
            ),
            options=_object(obj.get("options"), "options"),
            fingerprint=_sha(obj, "fingerprint", "receipt"),
            outputs=outputs,
            summary=_object(obj.get("summary", {}), "summary"),
            written_at=written_at,
        )


def is_current(record: OutputRecord | None, expected_fingerprint: str) -> bool:
    """True when ``record`` exists and was computed from what this run would compute from.

    Only half of "done": the files it lists must also be intact
    (:func:`pipelines.io.integrity.verify_outputs`).
    """
    return record is not None and record.fingerprint == expected_fingerprint


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}.{key} must be a non-negative integer, got {value!r}")
    return value


def _sha(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = _str(obj, key, where)
    if not _SHA256.match(value):
        raise ValueError(f"{where}.{key} is not a sha256 hex digest: {value!r}")
    return value
