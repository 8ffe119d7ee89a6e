"""``landcover promote``: the train flow's checks and pointer update by hand; a model that does
not load, or predicts the wrong number of classes, is refused; a lower score needs --force."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.layout import Layout
from flows.promote import main as promote_main
from flows.registry import promoted_model, read_promoted


def save_model(folder: Path, *, classes: int = 7, score: float | None = 0.5, arch="unet") -> Path:
    import keras

    folder.mkdir(parents=True)
    image = keras.Input((None, None, 3))
    out = keras.layers.Conv2D(classes, 1, activation="softmax")(image)
    keras.Model(image, out).save(folder / "model.keras")
    if score is not None:
        metadata = {"arch": arch, "version": folder.name, "val_miou": score}
        (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    corrupt = base / "corrupt"
    corrupt.mkdir()
    (corrupt / "model.keras").write_bytes(b"PK\x03\x04 not really a keras zip")
    (corrupt / "metadata.json").write_text(json.dumps({"arch": "unet", "val_miou": 0.99}))
    return {
        "good": save_model(base / "v1", score=0.5),
        "worse": save_model(base / "v2", score=0.4, arch="deeplabv3plus"),
        "wrong": save_model(base / "v3", classes=3, score=0.9),
        "bare": save_model(base / "v4", score=None),
        "corrupt": corrupt,
    }


def test_promote_checks_loads_and_updates_the_pointer(
    tmp_path: Path, models: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "root")
    assert promote_main([str(models["good"]), "--root", root]) == 0
    pointer = promoted_model(root)
    assert pointer is not None and pointer["model_version"] == "unet-v1"
    assert pointer["val_miou"] == 0.5 and len(pointer["model_sha256"]) == 64
    assert pointer["promoted_by"] == "landcover promote" and pointer["forced"] is False
    result = json.loads(capsys.readouterr().out)
    assert result["loaded"]["output_channels"] == 7

    before = Path(Layout(root).promoted_pointer).read_bytes()
    assert promote_main([str(models["worse"]), "--root", root]) == 1  # 0.4 does not beat 0.5
    assert "kept unet-v1" in capsys.readouterr().err
    assert Path(Layout(root).promoted_pointer).read_bytes() == before

    assert promote_main([str(models["worse"] / "model.keras"), "--root", root, "--force"]) == 0
    pointer = read_promoted(root)
    assert pointer is not None and pointer["model_version"] == "deeplabv3plus-v2"
    assert pointer["forced"] is True and pointer["previous"]["version"] == "v1"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("corrupt", "does not load"),
        ("wrong", "predicts 3 channels per pixel, not the 7 classes"),
        ("bare", "gives no arch or val_miou; pass --arch --score"),
    ],
)
def test_a_model_that_cannot_serve_is_refused_and_nothing_changes(
    tmp_path: Path,
    models: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
    name: str,
    reason: str,
) -> None:
    root = str(tmp_path / "root")
    assert promote_main([str(models[name]), "--root", root, "--force"]) == 2
    assert reason in capsys.readouterr().err
    assert read_promoted(root) is None


def test_flags_stand_in_for_missing_metadata_and_root_comes_from_the_environment(
    tmp_path: Path, models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANDCOVER_ROOT", str(tmp_path / "root"))
    assert promote_main([str(models["bare"]), "--arch", "unet", "--score", "0.3"]) == 0
    pointer = read_promoted(str(tmp_path / "root"))
    assert pointer is not None and pointer["model_version"] == "unet-v4"
    assert pointer["evaluated_on"] == "given with --score"


def test_no_root_and_no_model_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LANDCOVER_ROOT", raising=False)
    assert promote_main([str(tmp_path)]) == 2
    assert "no data root" in capsys.readouterr().err
    assert promote_main([str(tmp_path / "nope"), "--root", str(tmp_path)]) == 2
    assert "no model at" in capsys.readouterr().err
