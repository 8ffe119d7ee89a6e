"""The Dockerfiles parse, pin every base image, and pin the same versions as uv.lock.

No Docker engine is needed: the files are parsed into instructions (line continuations joined,
comments dropped), ``ARG`` defaults are substituted into ``FROM`` lines, and the versions the
images will install are compared with the lock.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

KNOWN = {"ARG", "FROM", "COPY", "ENV", "WORKDIR", "RUN", "ENTRYPOINT", "CMD", "LABEL", "EXPOSE"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; raises on anything Docker would not parse."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        assert keyword.upper() == keyword and keyword in KNOWN, f"{path.name}: {stripped!r}"
        assert rest.strip(), f"{path.name}: {keyword} without arguments"
        out.append((keyword, rest.strip()))
    return out


def arg_defaults(steps: list[tuple[str, str]]) -> dict[str, str]:
    return dict(a.split("=", 1) for k, a in steps if k == "ARG" and "=" in a)


def base_images(steps: list[tuple[str, str]]) -> list[str]:
    args = arg_defaults(steps)
    images = []
    for keyword, rest in steps:
        if keyword == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


@pytest.mark.parametrize("name", ["Dockerfile.beam", "Dockerfile.trainer"])
def test_parses_and_pins_every_base_image(infra: Path, name: str) -> None:
    steps = instructions(infra / name)
    stages = {rest.split()[-1] for k, rest in steps if k == "FROM" and " AS " in rest}
    images = base_images(steps)
    assert images, "no FROM"
    for image in images:
        if image in stages:
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: unpinned base image {image}"
    # Dependencies come from the lock, frozen, never resolved at build time.
    runs = [rest for k, rest in steps if k == "RUN"]
    assert any("uv sync --frozen" in r for r in runs)
    assert not any("pip install" in r for r in runs)
    assert ("WORKDIR", "/opt/landcover") in steps


def test_python_base_matches_the_project(infra: Path, repo: Path) -> None:
    requires = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["requires-python"]
    minor = re.search(r">=3\.(\d+)", requires)
    assert minor
    for name in ("Dockerfile.beam", "Dockerfile.trainer"):
        python = arg_defaults(instructions(infra / name))["PYTHON_IMAGE"]
        assert re.fullmatch(rf"python:3\.{minor.group(1)}\.\d+-slim-\w+", python), python


def test_beam_image_matches_the_lock(infra: Path, locked_version: Callable[[str], str]) -> None:
    steps = instructions(infra / "Dockerfile.beam")
    args = arg_defaults(steps)
    assert args["BEAM_VERSION"] == locked_version("apache-beam")
    images = base_images(steps)
    assert f"apache/beam_python3.11_sdk:{locked_version('apache-beam')}" in images
    runs = " ".join(rest for k, rest in steps if k == "RUN")
    assert "--extra cpu" in runs and "--no-dev" in runs
    copies = [rest for k, rest in steps if k == "COPY"]
    assert any("/opt/apache/beam" in c for c in copies), "Beam boot not copied in"
    assert any("python_template_launcher" in c for c in copies), "flex launcher not copied in"
    assert ("ENTRYPOINT", '["/opt/apache/beam/boot"]') in steps
    env = " ".join(rest for k, rest in steps if k == "ENV")
    py_file = re.search(r"FLEX_TEMPLATE_PYTHON_PY_FILE=(\S+)", env)
    assert py_file and py_file.group(1).startswith("/opt/landcover/")
    assert (infra.parent / py_file.group(1).removeprefix("/opt/landcover/")).is_file()


def test_trainer_image_matches_the_lock(
    infra: Path, repo: Path, locked_version: Callable[[str], str]
) -> None:
    steps = instructions(infra / "Dockerfile.trainer")
    tf_version = arg_defaults(steps)["TF_VERSION"]
    assert tf_version == locked_version("tensorflow")
    gpu_extra = tomllib.loads((repo / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["gpu"]
    assert gpu_extra == [f"tensorflow[and-cuda]=={tf_version}"]
    runs = " ".join(rest for k, rest in steps if k == "RUN")
    assert "--extra gpu" in runs and "--extra cpu" not in runs


def test_uv_version_matches_the_makefile(infra: Path, repo: Path) -> None:
    makefile = (repo / "Makefile").read_text()
    pinned = re.search(r"UV_VERSION := (\S+)", makefile)
    assert pinned
    for name in ("Dockerfile.beam", "Dockerfile.trainer"):
        assert arg_defaults(instructions(infra / name))["UV_VERSION"] == pinned.group(1)
