"""Batch inference: seamless stitching, exact outputs, gs://, nightly-safe reruns, bad scenes."""

from __future__ import annotations

import inspect
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models import normalization
from pipelines.core import tiling
from pipelines.core.errors import BadInputError
from pipelines.core.palette import CLASS_COLORS, NUM_CLASSES, decode_mask
from pipelines.io import imaging, storage
from pipelines.io.tfio import decode_tiff
from pipelines.predict import cli as predict_cli
from pipelines.predict import job as inference

TILE, OVERLAP = 128, 32


def _local_model():
    """Translation-equivariant: two 3x3 'same' convs + softmax, no pooling (radius 2 < margin)."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    # a large bias spread makes classes differ clearly, so argmax ties are not an issue
    logits = keras.layers.Conv2D(NUM_CLASSES, 3, padding="same")(x)
    probabilities = keras.layers.Activation("softmax", dtype="float32")(logits * 4.0)
    return keras.Model(image, probabilities)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    _local_model().save(folder / "model.keras")
    return folder


@pytest.fixture(scope="module")
def model(model_dir: Path):
    from models.serving import load_model

    return load_model(str(model_dir / "model.keras"))


def _image(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth-ish content so the model's classes form regions, plus pixel noise
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))[:height, :width]
    noise = rng.integers(-20, 21, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def _encode(image: np.ndarray, fmt: str, **options: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _reference(model, image: np.ndarray) -> np.ndarray:
    """The model on the whole scene, reflect-padded to the tile grid, cropped back."""
    padded = tiling.pad_to_grid(image, TILE, OVERLAP)
    probabilities = model.predict_on_batch(normalization.normalize_image(padded[None]))[0]
    return np.asarray(probabilities)[: image.shape[0], : image.shape[1]]


# ---- the shared pieces -------------------------------------------------------------------------


def test_stitched_odd_scene_equals_the_model_on_the_whole_padded_scene(model):
    image = _image(301, 257, seed=0)
    blender = inference.predict_image(image, model, tile=TILE, overlap=OVERLAP, batch_size=4)
    expected = _reference(model, image)
    assert len(blender.grid) == 9
    np.testing.assert_allclose(blender.probabilities(), expected, atol=1e-5)
    np.testing.assert_array_equal(blender.class_ids(), expected.argmax(-1))


def test_handler_normalises_with_the_shared_function(model, monkeypatch: pytest.MonkeyPatch):
    calls: list[tuple[int, ...]] = []
    shared = normalization.normalize_image

    def spy(batch):
        calls.append(batch.shape)
        return shared(batch)

    monkeypatch.setattr(normalization, "normalize_image", spy)
    tiles = tiling.cut_tiles(_image(140, 130, seed=1), TILE, OVERLAP)
    handler = inference.KerasSegmentationHandler("unused", batch_size=4)
    results = list(handler.run_inference(tiles, model))
    assert calls == [(4, TILE, TILE, 3)]
    expected = model.predict_on_batch(shared(np.stack(tiles)))
    for result, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(result.inference, want)
    assert handler.batch_elements_kwargs() == {"min_batch_size": 4, "max_batch_size": 4}


def test_training_input_uses_the_same_normalisation_and_inference_the_shared_tiling(
    monkeypatch: pytest.MonkeyPatch,
):
    from models import input as training_input

    # training calls the very function the handler calls (however it imports it)
    assert "normalize_image" in inspect.getsource(training_input)
    shared_fn = getattr(training_input, "normalize_image", normalization.normalize_image)
    assert shared_fn is normalization.normalize_image
    cut: list[tuple[int, int]] = []
    shared = tiling.cut_tiles
    monkeypatch.setattr(
        tiling, "cut_tiles", lambda image, t, o: cut.append(image.shape[:2]) or shared(image, t, o)
    )
    image = _image(150, 100, seed=2)
    scene = inference.Scene("s", "mem://s_sat.png")
    monkeypatch.setattr(storage, "read_bytes", lambda uri: _encode(image, "PNG"))
    out = list(inference.DecodeAndTile(TILE, OVERLAP).process(scene))
    assert cut == [(150, 100)]
    assert [key for key, _ in out] == [("s", i, 150, 100) for i in range(2)]
    for (_, tile), want in zip(out, shared(image, TILE, OVERLAP), strict=True):
        np.testing.assert_array_equal(tile, want)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_decode_tiff_reads_rgba_geotiff_style_files_and_rejects_garbage():
    image = _image(33, 45, seed=3)
    rgba = np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])
    # libtiff premultiplies alpha; undoing it is exact up to rounding (±255/200/2)
    decoded = decode_tiff(_encode(rgba, "TIFF"), "x_sat.tif").astype(int)
    assert np.abs(decoded - image).max() <= 1
    np.testing.assert_array_equal(decode_tiff(_encode(image, "TIFF"), "x_sat.tif"), image)
    lzw = _encode(image, "TIFF", compression="tiff_lzw")  # GeoTIFFs are usually compressed
    np.testing.assert_array_equal(decode_tiff(lzw, "x_sat.tif"), image)
    with pytest.raises(BadInputError, match=r"bad_sat\.tif.*cannot decode TIFF"):
        decode_tiff(b"II*\x00garbage", "gs://b/bad_sat.tif")
    with pytest.raises(BadInputError, match="empty"):
        decode_tiff(b"", "gs://b/empty_sat.tif")


def test_find_scenes_matches_all_formats_and_reports_duplicate_ids(tmp_path: Path):
    for name in ["1_sat.jpg", "1_sat.png", "2_sat.tif", "3_sat.TIFF", "4_mask.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    scenes = inference.find_scenes(str(tmp_path))
    assert [(s.scene_id, Path(s.uri).name, bool(s.problem)) for s in scenes] == [
        ("1", "1_sat.jpg", False),
        ("1", "1_sat.png", True),
        ("2", "2_sat.tif", False),
        ("3", "3_sat.TIFF", False),
    ]
    assert "duplicate" in scenes[1].problem
    single = inference.find_scenes(str(tmp_path / "2_sat.tif"))
    assert [s.scene_id for s in single] == ["2"]


# ---- the Beam job ------------------------------------------------------------------------------


def _write_inputs(folder: Path) -> dict[str, np.ndarray]:
    """Good scenes of awkward sizes and formats, and two bad ones."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = {
        "odd": _image(301, 257, seed=10),  # PNG: lossless, so the reference is exact
        "tiny": _image(50, 37, seed=11),  # smaller than one tile
        "geo": _image(140, 129, seed=12),  # TIFF through tensorflow-io
    }
    (folder / "odd_sat.png").write_bytes(_encode(scenes["odd"], "PNG"))
    (folder / "tiny_sat.png").write_bytes(_encode(scenes["tiny"], "PNG"))
    rgba = np.dstack([scenes["geo"], np.full(scenes["geo"].shape[:2], 255, np.uint8)])
    (folder / "geo_sat.tif").write_bytes(_encode(rgba, "TIFF"))
    (folder / "garbage_sat.jpg").write_bytes(b"not a jpeg at all")
    (folder / "cut_sat.png").write_bytes(_encode(_image(64, 64, seed=13), "PNG")[:200])
    return scenes


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "RGB"
        return np.asarray(img)


def test_predict_writes_exact_masks_skips_done_scenes_and_reports_bad_ones(
    tmp_path: Path, model_dir: Path, model
):
    scenes = _write_inputs(tmp_path / "in")
    out = tmp_path / "out"
    summary = inference.run_predict(
        str(model_dir),
        str(tmp_path / "in"),
        str(out),
        tile=TILE,
        overlap=OVERLAP,
        batch_size=3,
        write_class_ids=True,
        write_probabilities=True,
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
        expected = _reference(model, image)
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
    again = inference.run_predict(
        str(model_dir), str(tmp_path / "in"), str(out), tile=TILE, overlap=OVERLAP
    )
    assert (again["predicted"], again["skipped"], again["failed"]) == (0, 3, 2)

    # a crash left one scene unwritten: the re-run finishes exactly that one
    (out / "tiny_mask.png").unlink()
    before = os.stat(out / "odd_mask.png").st_mtime_ns
    resumed = inference.run_predict(
        str(model_dir),
        str(tmp_path / "in"),
        str(out),
        tile=TILE,
        overlap=OVERLAP,
        scenes_per_wave=1,
    )
    assert (resumed["predicted"], resumed["skipped"], resumed["failed"]) == (1, 2, 2)
    assert (out / "tiny_mask.png").exists()
    assert os.stat(out / "odd_mask.png").st_mtime_ns == before

    forced = inference.run_predict(
        str(model_dir), str(tmp_path / "in"), str(out), tile=TILE, overlap=OVERLAP, overwrite=True
    )
    assert (forced["predicted"], forced["skipped"], forced["failed"]) == (3, 0, 2)
    assert os.stat(out / "odd_mask.png").st_mtime_ns != before
    assert not list(out.glob("*.tmp-*"))  # atomic writes leave no partial files


def test_predict_gs_input_model_and_output_on_the_emulator(gcs_root: str, model_dir: Path):
    image = _image(150, 97, seed=20)
    storage.write_bytes(f"{gcs_root}/in/a_sat.jpg", _encode(image, "JPEG"))
    storage.write_bytes(f"{gcs_root}/in/bad_sat.png", b"broken")
    storage.upload_file(str(model_dir / "model.keras"), f"{gcs_root}/models/v1/model.keras")
    summary = inference.run_predict(
        f"{gcs_root}/models/v1", f"{gcs_root}/in", f"{gcs_root}/pred", tile=TILE, overlap=OVERLAP
    )
    assert (summary["predicted"], summary["skipped"], summary["failed"]) == (1, 0, 1)
    mask = imaging.decode_png(storage.read_bytes(f"{gcs_root}/pred/a_mask.png"))
    assert mask.shape == (150, 97, 3)
    (error_uri,) = storage.list_files(f"{gcs_root}/pred/errors")
    record = json.loads(storage.read_text(error_uri))
    assert record["uri"] == f"{gcs_root}/in/bad_sat.png"
    again = inference.run_predict(
        f"{gcs_root}/models/v1", f"{gcs_root}/in", f"{gcs_root}/pred", tile=TILE, overlap=OVERLAP
    )
    assert (again["predicted"], again["skipped"]) == (0, 1)


def test_cli_prints_the_summary_and_rejects_bad_arguments(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a_sat.png").write_bytes(_encode(_image(40, 40, seed=30), "PNG"))
    argv = ["--model", str(model_dir / "model.keras"), "--input", str(tmp_path / "in")]
    argv += ["--output", str(tmp_path / "out"), "--tile", "32", "--overlap", "8"]
    assert predict_cli.main([*argv, "--batch-size", "2", "--direct_num_workers", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["predicted"], summary["failed"]) == (1, 0)
    assert predict_cli.main([*argv, "--overlap", "20"]) == 2  # overlap > tile // 2
    assert "overlap" in capsys.readouterr().err
    same = ["--model", str(model_dir), "--input", str(tmp_path / "in")]
    assert predict_cli.main([*same, "--output", str(tmp_path / "in")]) == 2
    missing = [
        "--model",
        str(tmp_path),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(tmp_path / "y"),
    ]
    assert predict_cli.main(missing) == 2
    assert "no model" in capsys.readouterr().err


@pytest.mark.slow
def test_handler_loads_a_model_written_by_landcover_train(tmp_path: Path):
    """The real hand-off: synth → preprocess → train (tiny) → model.keras → predict."""
    from models.train.config import TrainConfig
    from models.train.loop import train
    from pipelines import synth
    from pipelines.preprocess.job import run_preprocess

    synth.write_scenes(str(tmp_path / "raw"), 3, size=128, seed=0)
    run_preprocess(
        str(tmp_path / "raw"), str(tmp_path / "records"), patch_size=64, val_fraction=0.34
    )
    train(
        TrainConfig(
            data=str(tmp_path / "records"),
            output=str(tmp_path / "model"),
            epochs=1,
            steps_per_epoch=1,
            batch_size=2,
            base_filters=2,
            val_steps=1,
        )
    )
    handler = inference.KerasSegmentationHandler(str(tmp_path / "model" / "model.keras"), 2)
    loaded = handler.load_model()
    tiles = tiling.cut_tiles(_image(70, 64, seed=40), 64, 16)
    results = list(handler.run_inference(tiles[:2], loaded))
    assert [r.inference.shape for r in results] == [(64, 64, NUM_CLASSES)] * 2
    np.testing.assert_allclose([r.inference.sum(-1).mean() for r in results], 1.0, atol=1e-4)
    summary = inference.run_predict(
        str(tmp_path / "model"), str(tmp_path / "raw"), str(tmp_path / "pred"), tile=64, overlap=16
    )
    assert (summary["predicted"], summary["failed"]) == (3, 0)
