"""Paths shared by the infra tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def locked_version(package: str) -> str:
    """The version uv.lock pins for ``package``."""
    text = (REPO / "uv.lock").read_text()
    match = re.search(rf'\[\[package\]\]\nname = "{re.escape(package)}"\nversion = "([^"]+)"', text)
    assert match, f"{package} not in uv.lock"
    return match.group(1)


@pytest.fixture
def repo() -> Path:
    return REPO
