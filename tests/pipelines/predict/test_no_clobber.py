"""Outputs never clobber what predict did not write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.predict.job import run_predict
from pipelines.predict.options import PredictOptions

OPTIONS = PredictOptions(tile=64, overlap=16, batch_size=2, class_ids=True)


def _scenes(folder: Path, make_image, encode_image, ids=("a", "b")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, scene_id in enumerate(ids):
        (folder / f"{scene_id}_sat.png").write_bytes(encode_image(make_image(40, 40, seed), "PNG"))


def test_a_file_predict_did_not_write_sends_its_scene_to_errors_unless_overwrite(
    tmp_path: Path, model_dir: Path, make_image, encode_image
) -> None:
    scenes, out = tmp_path / "in", tmp_path / "out"
    _scenes(scenes, make_image, encode_image)
    out.mkdir()
    (out / "a_classes.png").write_bytes(b"someone else's file")
    summary = run_predict(str(model_dir), str(scenes), str(out), OPTIONS)
    assert (summary["predicted"], summary["failed"]) == (1, 1)
    assert (out / "a_classes.png").read_bytes() == b"someone else's file"
    assert not (out / "a_mask.png").exists() and (out / "b.done.json").exists()
    errors = [
        json.loads(line) for f in summary["errors"] for line in Path(f).read_text().splitlines()
    ]
    assert [e["scene_id"] for e in errors] == ["a"]
    assert "not written by predict" in errors[0]["reason"] and "--overwrite" in errors[0]["reason"]

    forced = run_predict(
        str(model_dir),
        str(scenes),
        str(out),
        PredictOptions(**{**vars(OPTIONS), "overwrite": True}),
    )
    assert forced["failed"] == 0 and (out / "a.done.json").exists()
    assert (out / "a_classes.png").read_bytes() != b"someone else's file"
    # Files predict wrote are its own: a re-run (or a run killed before its record) goes on.
    again = run_predict(str(model_dir), str(scenes), str(out), OPTIONS)
    assert (again["skipped"], again["failed"]) == (2, 0)
    assert not list(out.glob("*.pending.json"))


def test_an_output_folder_holding_input_files_is_refused(
    tmp_path: Path, model_dir: Path, make_image, encode_image
) -> None:
    """``--input images --output masks`` where masks/ holds the truths, and ``--input
    a/x_sat.jpg --output a``: predict wrote its masks over them."""
    images, masks = tmp_path / "images", tmp_path / "masks"
    _scenes(images, make_image, encode_image)
    masks.mkdir()
    (masks / "a_mask.png").write_bytes(b"truth")
    with pytest.raises(ValueError, match="holds input files predict did not write"):
        run_predict(str(model_dir), str(images), str(masks), OPTIONS)
    assert (masks / "a_mask.png").read_bytes() == b"truth"

    folder = tmp_path / "a"
    _scenes(folder, make_image, encode_image, ids=("x",))
    (folder / "x_mask.png").write_bytes(b"truth beside its image")
    with pytest.raises(ValueError, match=r"x_sat\.png"):
        run_predict(str(model_dir), str(folder / "x_sat.png"), str(folder), OPTIONS)
    assert (folder / "x_mask.png").read_bytes() == b"truth beside its image"
