"""Every file under infra/ that is generated from the Python definitions is up to date.

One generic check for all of them (infra/generated.py's GENERATED: prefect.yaml and the
Dataflow templates): the committed text equals what the definitions give now. When it fails,
``python -m infra.generated`` rewrites them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import generated


def test_generated_files_are_up_to_date() -> None:
    assert generated.stale() == [], "run `python -m infra.generated`"


def test_a_changed_definition_makes_its_file_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in generated.GENERATED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(generated.REPO / path, tmp_path / path)
    assert generated.stale(tmp_path) == []
    gpu = {**generated.WORK_POOLS["gpu"], "name": generated.GPU_POOL}
    gpu["job_variables"] = {**gpu["job_variables"], "machine_type": "a2-highgpu-1g"}
    monkeypatch.setitem(generated.WORK_POOLS, "gpu", gpu)
    assert generated.stale(tmp_path) == ["infra/prefect.yaml"]
    (tmp_path / "infra/dataflow/predict-template.json").unlink()
    assert generated.stale(tmp_path) == [
        "infra/prefect.yaml",
        "infra/dataflow/predict-template.json",
    ]


def test_the_command_writes_what_check_then_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generated, "REPO", tmp_path)
    for path in generated.GENERATED:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    assert generated.main(["--check"]) == 1
    assert "infra/prefect.yaml is stale: run `python -m infra.generated`" in capsys.readouterr().err
    assert generated.main([]) == 0
    assert generated.main(["--check"]) == 0
    for path in generated.GENERATED:
        assert (tmp_path / path).read_text() == generated.GENERATED[path]()
