"""The bucket-notification script is valid bash and sets up what the bridge expects."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.drops.events import DROP_MARKER


def test_script_parses(infra: Path) -> None:
    script = infra / "gcs" / "notifications.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert os.access(script, os.X_OK)


def test_script_creates_finalize_notifications_and_a_subscription(infra: Path) -> None:
    text = (infra / "gcs" / "notifications.sh").read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert "gcloud pubsub topics create" in text
    assert "gcloud storage buckets notifications create" in text
    assert "--event-types=OBJECT_FINALIZE" in text
    assert "--payload-format=json" in text  # what flows.drops.gcs_bridge parses
    assert "--object-prefix=" in text
    assert "gcloud pubsub subscriptions create" in text
    assert "flows.drops.gcs_bridge" in text and DROP_MARKER == "_DONE"


def test_script_refuses_to_run_without_its_settings(infra: Path) -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    env = {k: v for k, v in os.environ.items() if k not in ("PROJECT", "BUCKET")}
    done = subprocess.run(
        ["bash", str(infra / "gcs" / "notifications.sh")], env=env, capture_output=True, text=True
    )
    assert done.returncode != 0 and "PROJECT" in done.stderr
