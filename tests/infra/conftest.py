"""Shared helpers of the infra tests: where the repository is, what uv.lock pins."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def infra() -> Path:
    return REPO / "infra"


@pytest.fixture(scope="session")
def locked_version() -> Callable[[str], str]:
    """``locked_version("apache-beam")`` → the version uv.lock pins."""
    text = (REPO / "uv.lock").read_text()

    def version(package: str) -> str:
        pattern = rf'\[\[package\]\]\nname = "{re.escape(package)}"\nversion = "([^"]+)"'
        match = re.search(pattern, text)
        assert match, f"{package} not in uv.lock"
        return match.group(1)

    return version
