"""Promotion: better models replace the promoted one, worse or equal ones never do."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from flows.layout import Layout
from flows.registry import (
    PromotedModelMissingError,
    is_better,
    promote_if_better,
    promoted_model,
    read_promoted,
)

MODELS: Path | None = None


@pytest.fixture(autouse=True)
def models_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where :func:`candidate` writes its model files (promotion checks they exist)."""
    global MODELS
    MODELS = tmp_path_factory.mktemp("models")


def candidate(arch: str, version: str, score: float) -> dict[str, object]:
    assert MODELS is not None
    folder = MODELS / arch / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.keras").write_bytes(f"{arch}-{version}".encode())
    return {"arch": arch, "version": version, "model_uri": str(folder), "val_miou": score}


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
    assert pointer["previous"]["model_uri"].endswith("/unet/v1")
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
    from pipelines.io import storage

    def on_gcs(arch: str, version: str, score: float) -> dict[str, object]:
        model_uri = f"{gcs_root}/models/{arch}/{version}"
        storage.write_bytes(f"{model_uri}/model.keras", b"model")
        return {**candidate(arch, version, score), "model_uri": model_uri}

    assert promote_if_better(gcs_root, on_gcs("unet", "v1", 0.2))
    assert not promote_if_better(gcs_root, on_gcs("unet", "v2", 0.1))
    assert promoted_model(gcs_root) is not None
    pointer = read_promoted(gcs_root)
    assert pointer is not None and pointer["version"] == "v1"


def test_a_model_without_its_file_is_never_promoted(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    ghost = {"arch": "unet", "version": "v1", "model_uri": str(tmp_path / "nope"), "val_miou": 0.9}
    with pytest.raises(FileNotFoundError, match=r"refusing to promote unet: no .*model\.keras"):
        promote_if_better(root, ghost)
    assert read_promoted(root) is None


def test_the_pointer_records_the_promoted_model_checksum(tmp_path: Path) -> None:
    import hashlib

    root = str(tmp_path / "root")
    chosen = candidate("unet", "v1", 0.4)
    promote_if_better(root, chosen)
    pointer = promoted_model(root)
    data = Path(str(chosen["model_uri"]), "model.keras").read_bytes()
    assert pointer is not None and pointer["model_size"] == len(data)
    assert pointer["model_sha256"] == hashlib.sha256(data).hexdigest()


def test_a_vanished_promoted_model_is_named_and_the_next_run_can_promote(tmp_path: Path) -> None:
    root = str(tmp_path / "root")
    first = candidate("unet", "v1", 0.9)
    promote_if_better(root, first)
    Path(str(first["model_uri"]), "model.keras").unlink()
    with pytest.raises(PromotedModelMissingError, match=r"promoted model unet-v1 is missing"):
        promoted_model(root)
    # A worse score than the vanished model's still wins: there is nothing usable to beat.
    assert promote_if_better(root, candidate("resnet50_unet", "v2", 0.1))
    pointer = promoted_model(root)
    assert pointer is not None and pointer["model_version"] == "resnet50_unet-v2"
    assert "does not exist" in pointer["previous"]["missing"]
