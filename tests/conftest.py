"""Fixtures every test package shares: a real GCS emulator, offline Beam, the real samples, and
offline validation of STAC documents against the schemas kept in ``tests/fixtures``."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Before anything imports TF, Prefect or Google clients: quiet, offline, no telemetry.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "landcover-test")

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "deepglobe-sample"
EMULATOR_BUCKET = "landcover-test"


def unused_loopback_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the OS picks it); for servers tests start."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """Call it for an unused loopback port (once per server a test starts)."""
    return unused_loopback_port


@pytest.fixture(scope="session")
def gcs_emulator(free_port: Callable[[], int]) -> Iterator[str]:
    """A real GCS API (gcp-storage-emulator) on loopback; yields the bucket name.

    ``STORAGE_EMULATOR_HOST`` is what google-cloud-storage, and so Beam's gs:// filesystem,
    reads to talk to an emulator instead of Google.
    """
    # Beam looks for Google credentials with 4 backed-off retries (~22 s) before it settles on
    # an anonymous client, which is all an emulator needs: settle it up front, in this process.
    from apache_beam.internal.gcp.auth import _Credentials
    from gcp_storage_emulator.server import create_server

    _Credentials._credentials_init, _Credentials._credentials = True, None
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=EMULATOR_BUCKET)
    server.start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    try:
        yield EMULATOR_BUCKET
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture
def gcs_root(gcs_emulator: str) -> str:
    """A fresh ``gs://`` prefix per test inside the emulator's bucket."""
    return f"gs://{gcs_emulator}/{uuid.uuid4().hex[:12]}"


@pytest.fixture
def test_pipeline():  # type: ignore[no-untyped-def]
    """A TestPipeline factory on the offline DirectRunner (no Prism download attempt)."""
    from apache_beam.testing.test_pipeline import TestPipeline

    from pipelines.io.beam_runtime import OfflineDirectRunner

    def make() -> TestPipeline:
        return TestPipeline(runner=OfflineDirectRunner())

    return make


@pytest.fixture(scope="session")
def deepglobe_sample() -> Path:
    """The four real DeepGlobe scenes in ../shared; tests using them skip where it is absent."""
    if not SAMPLE_DIR.is_dir() or not list(SAMPLE_DIR.glob("*_sat.jpg")):
        pytest.skip(f"real DeepGlobe sample not present at {SAMPLE_DIR}")
    return SAMPLE_DIR


STAC_SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "stac-schemas"
CORE_SCHEMAS = {
    "Feature": "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json",
    "Collection": "https://schemas.stacspec.org/v1.1.0/collection-spec/json-schema/collection.json",
}


def _stac_registry() -> Any:
    """Every fixture schema under the URL it is published at (see the fixtures' README)."""
    import json

    from jsonschema_specifications import REGISTRY
    from referencing import Resource

    resources = []
    for path in STAC_SCHEMAS.rglob("*.json"):
        url = "https://" + path.relative_to(STAC_SCHEMAS).as_posix()
        resources.append((url, Resource.from_contents(json.loads(path.read_text()))))
    return REGISTRY.with_resources(resources)


def _stac_validate(document: dict[str, Any]) -> list[str]:
    """Errors of a STAC Item or Collection against its core schema and each extension's."""
    from jsonschema import Draft7Validator

    registry = _stac_registry()
    schemas = [CORE_SCHEMAS[document["type"]], *document.get("stac_extensions", [])]
    errors = []
    for url in schemas:
        schema = registry.contents(url)
        validator = Draft7Validator(schema, registry=registry)
        errors += [f"{url}: {e.json_path}: {e.message}" for e in validator.iter_errors(document)]
    return errors


@pytest.fixture
def stac_validate() -> Callable[[dict[str, Any]], list[str]]:
    """``stac_validate(document)`` → its schema errors (an empty list: valid), offline."""
    return _stac_validate
