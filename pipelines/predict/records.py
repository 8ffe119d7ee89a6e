"""Done-records of predicted scenes: what a scene's outputs were computed from, written LAST.

Per scene the job writes its outputs, then ``{id}.done.json`` (an
:class:`~pipelines.core.provenance.OutputRecord`) with ``atomic_write``: the record is the commit
point. A scene is done iff its record parses, records the fingerprint this run would compute
(input size and sha256, model version and sha256, the options that change the output bytes) and
the files it lists are intact (:func:`pipelines.io.integrity.verify_outputs`). Batch size, block
size, waves and runner do not change the bytes and are not in the fingerprint.

:func:`scene_is_done` is the one answer to "is this scene done?": the job and the nightly flow ask
it, never a file-name check.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.core.naming import basename
from pipelines.core.provenance import (
    FileDigest,
    InputRef,
    ModelRef,
    OutputRecord,
    done_name,
    is_current,
    output_fingerprint,
)
from pipelines.io import integrity, storage

# Bump when the bytes predict writes for the same inputs and options change (file layout,
# encoders, stitching): every recorded scene is then predicted again.
OUTPUT_SCHEMA_VERSION = 3
# ``{id}.pending.json``: the outputs a scene is being written to, until its record lists them.
PENDING_SUFFIX = ".pending.json"
# Set to a point name to SIGKILL the process there (the fault-injection tests' hook).
FAULT_POINT_ENV = "LANDCOVER_FAULT_POINT"


def fault_point(name: str) -> None:
    """Die at once (SIGKILL, no cleanup) when ``LANDCOVER_FAULT_POINT`` names this point."""
    if os.environ.get(FAULT_POINT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def prediction_options(output_options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that change a scene's output bytes (``PredictOptions.output_options``) and
    the output schema's version, as fingerprinted and recorded."""
    return {**output_options, "output_schema": OUTPUT_SCHEMA_VERSION}


def model_ref(model_file: str) -> ModelRef:
    """The model as recorded: its folder's name as version, and the checksum of its bytes."""
    parent = model_file.rstrip("/").rsplit("/", 1)[0] if "/" in model_file else ""
    version = basename(parent) if parent else basename(model_file)
    return ModelRef(uri=model_file, version=version, sha256=integrity.sha256_of(model_file))


def input_ref(uri: str) -> InputRef:
    size, sha = integrity.digest_of(uri)
    return InputRef(uri=uri, size=size, sha256=sha)


def record_uri(output_uri: str, scene_id: str) -> str:
    return storage.join(output_uri, done_name(scene_id))


def read_record(output_uri: str, scene_id: str) -> OutputRecord | None:
    """The scene's record, or None when it is missing or does not parse (= not done)."""
    uri = record_uri(output_uri, scene_id)
    if not storage.exists(uri):
        return None
    try:
        return OutputRecord.from_json(storage.read_bytes(uri))
    except (FileNotFoundError, ValueError):  # vanished meanwhile, or garbled
        return None


def scene_is_done(output_uri: str, scene_id: str, fingerprint: str) -> bool:
    """True iff the scene's record is current for ``fingerprint`` and its outputs are intact."""
    record = read_record(output_uri, scene_id)
    if not is_current(record, fingerprint):
        return False
    assert record is not None
    return not integrity.verify_outputs(record, output_uri)


def pending_uri(output_uri: str, scene_id: str) -> str:
    return storage.join(output_uri, f"{scene_id}{PENDING_SUFFIX}")


class _AllOutputs(set[str]):
    """Every name: what a done-record that exists but does not parse accounts for."""

    def __contains__(self, name: object) -> bool:
        return True


ALL_OUTPUTS = _AllOutputs()


def accounted_outputs(output_uri: str, scene_id: str) -> set[str]:
    """Output names this pipeline wrote or is writing for the scene: those its done-record
    lists and those its pending note announced (a run killed between outputs and record)."""
    names: set[str] = set()
    record = read_record(output_uri, scene_id)
    if record is not None:
        names |= set(record.outputs)
    elif storage.exists(record_uri(output_uri, scene_id)):
        return ALL_OUTPUTS  # its own record, garbled: the scene's outputs are predict's
    uri = pending_uri(output_uri, scene_id)
    if storage.exists(uri):
        with contextlib.suppress(FileNotFoundError, ValueError, AttributeError):
            names |= {str(n) for n in json.loads(storage.read_text(uri)).get("outputs", [])}
    return names


def foreign_outputs(output_uri: str, scene_id: str, names: Sequence[str]) -> list[str]:
    """The output names that exist in the folder but that no record or pending note of this
    pipeline accounts for: files predict did not write, which it must not replace."""
    ours = accounted_outputs(output_uri, scene_id)
    return [n for n in names if n not in ours and storage.exists(storage.join(output_uri, n))]


def retract(output_uri: str, scene_id: str, names: Sequence[str] = ()) -> None:
    """Before a scene's outputs are (re)written: note the names about to be written (so a run
    killed before the record still accounts for them), then remove the record: not done."""
    if names:
        integrity.atomic_write(
            pending_uri(output_uri, scene_id), json.dumps({"outputs": sorted(names)}) + "\n"
        )
    uri = record_uri(output_uri, scene_id)
    if storage.exists(uri):
        storage.delete([uri])


def commit(
    output_uri: str,
    scene_id: str,
    *,
    source: InputRef,
    model: ModelRef,
    options: Mapping[str, Any],
    outputs: Sequence[str],
    summary: Mapping[str, Any],
) -> OutputRecord:
    """Write the scene's record LAST, listing each output's size and sha256 as it is now."""
    digests = {}
    for uri in outputs:
        size, sha = integrity.digest_of(uri)
        digests[basename(uri)] = FileDigest(size, sha)
    record = OutputRecord(
        subject_id=scene_id,
        input=source,
        model=model,
        options=dict(options),
        fingerprint=output_fingerprint(source, model, options),
        outputs=digests,
        summary=dict(summary),
    )
    fault_point("after-outputs-before-record")
    integrity.atomic_write(record_uri(output_uri, scene_id), record.to_json())
    storage.delete([pending_uri(output_uri, scene_id)])  # the record accounts for them now
    return record
