"""The predict job end to end: exact outputs, gs://, nightly-safe reruns, bad scenes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.serving import input_multiple
from pipelines.core.palette import CLASS_COLORS, decode_mask
from pipelines.core.tiling import plan_tile
from pipelines.io import imaging, storage
from pipelines.predict.job import resolve_model_uri, run_predict
from pipelines.predict.options import PredictOptions

TILE, OVERLAP = 128, 32


def _write_inputs(folder: Path, make_image, encode_image) -> dict[str, np.ndarray]:
    """Good scenes of awkward sizes and formats, and two bad ones."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = {
        "odd": make_image(301, 257, seed=10),  # PNG: lossless, so the reference is exact
        "tiny": make_image(50, 37, seed=11),  # smaller than one tile
        "geo": make_image(140, 129, seed=12),  # TIFF through tensorflow-io
    }
    (folder / "odd_sat.png").write_bytes(encode_image(scenes["odd"], "PNG"))
    (folder / "tiny_sat.png").write_bytes(encode_image(scenes["tiny"], "PNG"))
    rgba = np.dstack([scenes["geo"], np.full(scenes["geo"].shape[:2], 255, np.uint8)])
    (folder / "geo_sat.tif").write_bytes(encode_image(rgba, "TIFF"))
    (folder / "garbage_sat.jpg").write_bytes(b"not a jpeg at all")
    (folder / "cut_sat.png").write_bytes(encode_image(make_image(64, 64, seed=13), "PNG")[:200])
    return scenes


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img)


def test_predict_writes_exact_masks_skips_done_scenes_and_reports_bad_ones(
    tmp_path: Path, model_dir: Path, model, make_image, encode_image, reference
):
    scenes = _write_inputs(tmp_path / "in", make_image, encode_image)
    out = tmp_path / "out"
    summary = run_predict(
        str(model_dir),
        str(tmp_path / "in"),
        str(out),
        PredictOptions(
            tile=TILE, overlap=OVERLAP, batch_size=3, class_ids=True, probabilities=True
        ),
    )
    assert {k: summary[k] for k in ("predicted", "skipped", "failed", "scenes")} == {
        "predicted": 3,
        "skipped": 0,
        "failed": 2,
        "scenes": 5,
    }
    assert summary["timings"]["forward_s"] > 0
    palette = {tuple(c) for c in CLASS_COLORS}
    for scene_id, image in scenes.items():
        mask = _read_rgb(out / f"{scene_id}_mask.png")
        assert mask.shape == image.shape  # the scene's exact size
        assert {tuple(c) for c in np.unique(mask.reshape(-1, 3), axis=0)} <= palette
        class_ids = np.asarray(Image.open(out / f"{scene_id}_classes.png"))
        np.testing.assert_array_equal(decode_mask(mask), class_ids)
        with np.load(out / f"{scene_id}_probs.npz") as probs:
            assert probs["probabilities"].dtype == np.float16
            stitched = probs["probabilities"].astype(np.float32)
        # --tile is the budget: the scene is tiled as planned for it and this model's stride
        tile = plan_tile(*image.shape[:2], TILE, OVERLAP, input_multiple(model))
        expected = reference(model, image, tile, OVERLAP)
        np.testing.assert_allclose(stitched, expected, atol=2e-3)  # float16 storage
        confident = np.sort(expected, -1)[..., -1] - np.sort(expected, -1)[..., -2] > 1e-3
        np.testing.assert_array_equal(class_ids[confident], expected.argmax(-1)[confident])

    (error_file,) = (out / "errors").iterdir()
    records = [json.loads(line) for line in error_file.read_text().splitlines()]
    assert sorted(r["scene_id"] for r in records) == ["cut", "garbage"]
    assert all(r["stage"] == "predict" for r in records)
    assert sorted(Path(r["uri"]).name for r in records) == ["cut_sat.png", "garbage_sat.jpg"]
    assert summary["errors"] == [str(error_file)]

    # nightly re-run: done scenes are skipped, bad ones retried (and reported again)
    same = {"tile": TILE, "overlap": OVERLAP, "class_ids": True, "probabilities": True}
    again = run_predict(str(model_dir), str(tmp_path / "in"), str(out), PredictOptions(**same))
    assert (again["predicted"], again["skipped"], again["failed"]) == (0, 3, 2)

    # a crash left one scene unwritten: the re-run finishes exactly that one
    (out / "tiny_mask.png").unlink()
    before = os.stat(out / "odd_mask.png").st_mtime_ns
    one_by_one = PredictOptions(scenes_per_wave=1, batch_size=1, **same)
    resumed = run_predict(str(model_dir), str(tmp_path / "in"), str(out), one_by_one)
    assert (resumed["predicted"], resumed["skipped"], resumed["failed"]) == (1, 2, 2)
    assert (out / "tiny_mask.png").exists()
    assert os.stat(out / "odd_mask.png").st_mtime_ns == before

    forced = run_predict(
        str(model_dir), str(tmp_path / "in"), str(out), PredictOptions(overwrite=True, **same)
    )
    assert (forced["predicted"], forced["skipped"], forced["failed"]) == (3, 0, 2)
    assert os.stat(out / "odd_mask.png").st_mtime_ns != before
    assert not list(out.glob("*.tmp-*"))  # atomic writes leave no partial files


def test_predict_gs_input_model_and_output_on_the_emulator(
    gcs_root: str, model_dir: Path, make_image, encode_image
):
    image = make_image(150, 97, seed=20)
    storage.write_bytes(f"{gcs_root}/in/a_sat.jpg", encode_image(image, "JPEG"))
    storage.write_bytes(f"{gcs_root}/in/bad_sat.png", b"broken")
    storage.upload_file(str(model_dir / "model.keras"), f"{gcs_root}/models/v1/model.keras")
    summary = run_predict(
        f"{gcs_root}/models/v1",
        f"{gcs_root}/in",
        f"{gcs_root}/pred",
        PredictOptions(tile=TILE, overlap=OVERLAP),
    )
    assert (summary["predicted"], summary["skipped"], summary["failed"]) == (1, 0, 1)
    mask = imaging.decode_png(storage.read_bytes(f"{gcs_root}/pred/a_mask.png"))
    assert mask.shape == (150, 97, 3)
    (error_uri,) = storage.list_files(f"{gcs_root}/pred/errors")
    record = json.loads(storage.read_text(error_uri))
    assert record["uri"] == f"{gcs_root}/in/bad_sat.png"
    again = run_predict(
        f"{gcs_root}/models/v1",
        f"{gcs_root}/in",
        f"{gcs_root}/pred",
        PredictOptions(tile=TILE, overlap=OVERLAP),
    )
    assert (again["predicted"], again["skipped"]) == (0, 1)


def test_the_model_is_a_keras_file_or_a_folder_holding_one(tmp_path: Path, model_dir: Path):
    model_file = str(model_dir / "model.keras")
    assert resolve_model_uri(model_file) == model_file
    assert resolve_model_uri(str(model_dir)) == model_file
    with pytest.raises(FileNotFoundError, match=r"no model at .*model\.keras"):
        resolve_model_uri(str(tmp_path))


def test_arguments_are_checked_before_any_work(tmp_path: Path, model_dir: Path):
    folder = str(tmp_path / "in")
    with pytest.raises(ValueError, match="overlap"):
        run_predict(
            str(model_dir), folder, str(tmp_path / "out"), PredictOptions(tile=32, overlap=20)
        )
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        run_predict(str(model_dir), folder, str(tmp_path / "out"), PredictOptions(batch_size=0))
    for inside in (folder + "/", folder + "/./", folder + "/preds", str(tmp_path / "x/../in/p")):
        with pytest.raises(ValueError, match="must not be the input folder or inside it"):
            run_predict(str(model_dir), folder, inside)
    with pytest.raises(ValueError, match="unknown tta 'rot'; valid: none, flip, d4"):
        run_predict(str(model_dir), folder, str(tmp_path / "out"), PredictOptions(tta="rot"))
    with pytest.raises(ValueError, match="unknown format 'jpeg'; valid: png, cog"):
        run_predict(str(model_dir), folder, str(tmp_path / "out"), PredictOptions(format="jpeg"))
    assert not (tmp_path / "out").exists()
