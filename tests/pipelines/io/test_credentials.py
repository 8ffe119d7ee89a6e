"""Missing cloud credentials: one line, in seconds, saying how to provide them."""

from __future__ import annotations

import time

import pytest

from pipelines.io import credentials
from pipelines.io.credentials import MissingCredentialsError, check_credentials, gs_uris


def test_gs_uris_are_found_among_arguments() -> None:
    argv = ["--input", "gs://b/in", "--output=gs://b/out", "/local", "--model", "m.keras"]
    assert gs_uris(argv) == ["gs://b/in", "gs://b/out"]


def test_local_paths_and_emulators_need_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/key.json")
    check_credentials("/data/root")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:1")
    check_credentials("gs://bucket/root")


def test_missing_credentials_fail_fast_with_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", f"{tmp_path}/missing-key.json")
    started = time.monotonic()
    with pytest.raises(MissingCredentialsError) as caught:
        check_credentials("gs://my-bucket/landcover")
    assert time.monotonic() - started < credentials.CREDENTIALS_TIMEOUT_S
    message = str(caught.value)
    assert "\n" not in message
    assert "gs://my-bucket/" in message
    assert "gcloud auth application-default login" in message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message
