"""Promotion: better models replace the promoted one, worse or equal ones never do."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flows.layout import Layout
from flows.registry import is_better, promote_if_better, read_promoted


def candidate(arch: str, version: str, score: float) -> dict[str, object]:
    return {
        "arch": arch,
        "version": version,
        "model_uri": f"/models/{arch}/{version}",
        "val_miou": score,
    }


def test_first_model_ever_is_promoted(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert read_promoted(root) is None
    assert promote_if_better(root, candidate("unet", "v1", 0.41))
    pointer = json.loads(Path(Layout(root).promoted_pointer).read_text())
    assert pointer["arch"] == "unet" and pointer["version"] == "v1"
    assert pointer["model_version"] == "unet-v1"
    assert pointer["val_miou"] == pytest.approx(0.41)
    assert pointer["previous"] is None


def test_better_model_is_promoted_and_remembers_the_previous(tmp_path: Path) -> None:
    root = str(tmp_path)
    promote_if_better(root, candidate("unet", "v1", 0.41))
    assert promote_if_better(root, candidate("resnet50_unet", "v2", 0.55))
    pointer = read_promoted(root)
    assert pointer is not None
    assert pointer["model_version"] == "resnet50_unet-v2"
    assert pointer["previous"]["model_uri"] == "/models/unet/v1"
    assert pointer["previous"]["val_miou"] == pytest.approx(0.41)


@pytest.mark.parametrize("score", [0.30, 0.41])
def test_worse_or_equal_model_is_not_promoted(tmp_path: Path, score: float) -> None:
    root = str(tmp_path)
    promote_if_better(root, candidate("unet", "v1", 0.41))
    before = Path(Layout(root).promoted_pointer).read_bytes()
    assert not promote_if_better(root, candidate("resnet50_unet", "v2", score))
    assert Path(Layout(root).promoted_pointer).read_bytes() == before


def test_current_score_from_reevaluation_overrides_the_stored_one(tmp_path: Path) -> None:
    """The promoted model re-scored on today's val scenes is the fair baseline."""
    root = str(tmp_path)
    promote_if_better(root, candidate("unet", "v1", 0.60))
    assert not promote_if_better(root, candidate("unet", "v2", 0.50))
    assert promote_if_better(root, candidate("unet", "v2", 0.50), current_score=0.45)
    pointer = read_promoted(root)
    assert pointer is not None and pointer["version"] == "v2"
    assert pointer["previous"]["val_miou"] == pytest.approx(0.45)


def test_unscorable_candidates_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="non-finite"):
        promote_if_better(str(tmp_path), candidate("unet", "v1", math.nan))
    with pytest.raises(ValueError, match="model_uri"):
        promote_if_better(str(tmp_path), {"arch": "unet", "version": "v1", "val_miou": 0.5})
    assert read_promoted(str(tmp_path)) is None


def test_is_better_is_strict() -> None:
    assert is_better(0.1, None)
    assert is_better(0.5, 0.4)
    assert not is_better(0.4, 0.4)


def test_pointer_on_gcs(gcs_root: str) -> None:
    assert promote_if_better(gcs_root, candidate("unet", "v1", 0.2))
    assert not promote_if_better(gcs_root, candidate("unet", "v2", 0.1))
    pointer = read_promoted(gcs_root)
    assert pointer is not None and pointer["version"] == "v1"
