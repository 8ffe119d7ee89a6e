"""An output's receipt: fingerprint by content, round-trips, and a bad receipt means "not done"."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from pipelines.core.provenance import (
    FileDigest,
    InputRef,
    ModelRef,
    OutputRecord,
    canonical_json,
    done_name,
    fingerprint,
    is_current,
    output_fingerprint,
)

SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()
SHA_M = hashlib.sha256(b"model").hexdigest()


def make_record(**changes: object) -> OutputRecord:
    source = InputRef("gs://b/raw/1_sat.jpg", 10, SHA_A)
    model = ModelRef("gs://b/models/unet", "v3", SHA_M)
    options = {"tile_size": 512, "write_probs": False}
    record = OutputRecord(
        subject_id="1",
        input=source,
        model=model,
        options=options,
        fingerprint=output_fingerprint(source, model, options),
        outputs={"1_mask.png": FileDigest(5, SHA_B)},
        summary={"warnings": ["small image"], "tiles": 4},
        written_at="2025-01-02T03:04:05+00:00",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_fingerprint_is_sha256_of_canonical_json() -> None:
    parts = {"b": [1, 2], "a": {"y": 1, "x": "é"}}
    assert canonical_json(parts) == '{"a":{"x":"é","y":1},"b":[1,2]}'
    assert fingerprint(parts) == hashlib.sha256(canonical_json(parts).encode()).hexdigest()
    assert fingerprint(parts) == fingerprint({"a": {"x": "é", "y": 1}, "b": [1, 2]})
    assert fingerprint(parts) != fingerprint({**parts, "b": [2, 1]})


def test_fingerprint_refuses_values_without_json_form() -> None:
    with pytest.raises(ValueError):
        fingerprint({"x": float("nan")})
    with pytest.raises(TypeError):
        fingerprint({"x": object()})


def test_output_fingerprint_changes_with_input_model_or_options_not_uris() -> None:
    source = InputRef("gs://b/raw/1_sat.jpg", 10, SHA_A)
    model = ModelRef("gs://b/models/unet", "v3", SHA_M)
    base = output_fingerprint(source, model, {"tile": 512})
    moved = output_fingerprint(
        dataclasses.replace(source, uri="/elsewhere/1_sat.jpg"),
        dataclasses.replace(model, uri="/models/unet"),
        {"tile": 512},
    )
    assert moved == base
    assert (
        output_fingerprint(dataclasses.replace(source, sha256=SHA_B), model, {"tile": 512}) != base
    )
    assert (
        output_fingerprint(source, dataclasses.replace(model, version="v4"), {"tile": 512}) != base
    )
    assert (
        output_fingerprint(source, dataclasses.replace(model, sha256=SHA_B), {"tile": 512}) != base
    )
    assert output_fingerprint(source, model, {"tile": 256}) != base


def test_record_round_trips_through_json() -> None:
    record = make_record()
    assert OutputRecord.from_json(record.to_json()) == record
    assert OutputRecord.from_json(record.to_json().encode()) == record
    assert json.loads(record.to_json())["schema_version"] == 1


def test_written_at_defaults_to_now_in_utc() -> None:
    record = OutputRecord(
        subject_id="1",
        input=InputRef("x", 1, SHA_A),
        model=ModelRef("m", "v", SHA_M),
        options={},
        fingerprint=SHA_B,
        outputs={},
    )
    assert record.written_at.endswith("+00:00")
    assert OutputRecord.from_json(record.to_json()) == record


def test_is_current_compares_fingerprints() -> None:
    record = make_record()
    assert is_current(record, record.fingerprint)
    assert not is_current(record, SHA_B)
    assert not is_current(None, record.fingerprint)


def test_done_name() -> None:
    assert done_name("123") == "123.done.json"


def _mutated(mutate: object) -> str:
    data = json.loads(make_record().to_json())
    mutate(data)  # type: ignore[operator]
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not JSON"),
        (make_record().to_json()[:40], "not JSON"),  # truncated
        (b"\xff\xfe garbage", "not JSON"),
        ("[1, 2]", "receipt must be a JSON object"),
        (_mutated(lambda d: d.pop("fingerprint")), "receipt.fingerprint must be a string"),
        (_mutated(lambda d: d.update(fingerprint="abc")), "not a sha256"),
        (_mutated(lambda d: d.update(schema_version=99)), "newer than this code"),
        (_mutated(lambda d: d.update(schema_version="1")), "schema_version must be"),
        (_mutated(lambda d: d["input"].update(size=-1)), "input.size must be"),
        (_mutated(lambda d: d["input"].update(size=True)), "input.size must be"),
        (_mutated(lambda d: d.update(model=None)), "model must be a JSON object"),
        (_mutated(lambda d: d["model"].pop("version")), "model.version must be"),
        (_mutated(lambda d: d.update(options=[])), "options must be"),
        (_mutated(lambda d: d.update(outputs={"../x": {"size": 1, "sha256": SHA_A}})), "'..'"),
        (_mutated(lambda d: d.update(outputs={"x": {"size": 1}})), r"outputs\['x'\].sha256"),
        (_mutated(lambda d: d.update(written_at="yesterday")), "ISO timestamp"),
    ],
)
def test_from_json_raises_value_error_naming_the_problem(text: str | bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        OutputRecord.from_json(text)
