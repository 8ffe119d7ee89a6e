"""A dataset's GSD: surveyed before the job, mixed inputs refused, ``--target-gsd`` resampling
(image by area, labels by mode) recorded in the manifest, ``--gsd`` for JPEG/PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from pipelines.core.errors import BadInputError
from pipelines.core.records import RecordFormat
from pipelines.io.labeled import read_labeled
from pipelines.io.records import decode_patch, read_manifest, resolve_dataset, split_files
from pipelines.preprocess import cli as preprocess_cli
from pipelines.preprocess import resolution
from pipelines.preprocess.job import run_preprocess
from pipelines.preprocess.options import PreprocessOptions
from pipelines.preprocess.resolution import GsdPlan, MixedGsdError, resample_scene, survey_gsd


def _tif_pair(folder: Path, scene_id: str, image: np.ndarray, ids: np.ndarray, **grid) -> None:  # type: ignore[no-untyped-def]
    """``{id}_sat.tif`` + ``{id}_mask.tif`` on one grid (``pixel`` m, or ``crs``/``transform``)."""
    crs = grid.get("crs", "EPSG:32633")
    transform = grid.get("transform") or from_origin(
        500_000, 4_000_000, grid["pixel"], grid["pixel"]
    )
    height, width = ids.shape
    for name, bands in (
        (f"{scene_id}_sat.tif", image.transpose(2, 0, 1)),
        (f"{scene_id}_mask.tif", ids[None]),
    ):
        profile = {"driver": "GTiff", "width": width, "height": height, "count": bands.shape[0]}
        profile |= {"dtype": "uint8", "crs": crs, "transform": transform}
        with rasterio.open(folder / name, "w", **profile) as dst:
            dst.write(bands)


def _scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (height, width, 3)).astype(np.uint8),
        rng.integers(0, 7, (height, width)).astype(np.uint8),
    )


def _patches(root: str) -> dict[str, list[dict]]:
    import tensorflow as tf

    found: dict[str, list[dict]] = {}
    for split in ("train", "val"):
        for uri in split_files(root, split):
            for raw in tf.data.TFRecordDataset(uri):
                patch = decode_patch(raw.numpy(), RecordFormat())
                found.setdefault(patch["scene_id"], []).append(patch)
    return found


def _errors(root: str) -> dict[str, str]:
    return {
        Path(json.loads(line)["uri"]).name: json.loads(line)["reason"]
        for path in sorted((Path(root) / "errors").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    }


def test_a_mixed_input_is_refused_before_any_work_naming_each_gsd(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    for i, pixel in enumerate((0.5, 0.5, 1.0)):
        _tif_pair(raw, f"s{i}", *_scene(i, 16, 16), pixel=pixel)
    uris = [str(p) for p in raw.iterdir()]
    with pytest.raises(MixedGsdError) as error:
        survey_gsd(uris, None, None)
    message = str(error.value)
    assert "0.5 m: 2 scene(s) (s0, s1); 1 m: 1 scene(s) (s2)" in message
    assert "--target-gsd 1, the coarsest" in message
    assert survey_gsd(uris, None, 1.0) == GsdPlan(None, 1.0, None)  # a target needs no survey
    assert survey_gsd(uris, 2.0, None) == GsdPlan(2.0, None, 2.0)  # nor an override
    code = preprocess_cli.main(["--input", str(raw), "--output", str(out)])
    assert code == 1 and not out.exists()  # refused before a version folder was made


def test_the_survey_takes_jpegs_at_the_default_and_leaves_unreadable_scenes_to_the_job(
    tmp_path: Path,
) -> None:
    (tmp_path / "a_sat.jpg").write_bytes(b"not read")  # JPEG/PNG: 0.5 m, never opened
    (tmp_path / "a_mask.png").write_bytes(b"")
    (tmp_path / "b_sat.tif").write_bytes(b"garbage")
    (tmp_path / "b_mask.tif").write_bytes(b"")
    (tmp_path / "c_sat.tif").write_bytes(b"an image without a mask")
    assert survey_gsd([str(p) for p in tmp_path.iterdir()], None, None).expected == 0.5


def test_a_scene_off_the_dataset_gsd_or_with_pixels_not_square_is_bad_input(
    tmp_path: Path,
) -> None:
    _tif_pair(tmp_path, "m", *_scene(0, 8, 8), pixel=1.0)
    scene = read_labeled(str(tmp_path / "m_sat.tif"), str(tmp_path / "m_mask.tif"))
    with pytest.raises(BadInputError, match=r"at 1 m .* but the dataset at 0.5 m .* --target-gsd"):
        GsdPlan(expected=0.5).apply(scene, str(tmp_path / "m_sat.tif"))
    image, ids, native = GsdPlan(expected=1.004).apply(scene, "m")  # within 1 %: untouched
    assert image is scene.image and native.metres == 1.0
    wide = from_origin(500_000, 4_000_000, 0.5, 1.0)
    _tif_pair(tmp_path, "w", *_scene(0, 8, 8), transform=wide)
    scene = read_labeled(str(tmp_path / "w_sat.tif"), str(tmp_path / "w_mask.tif"))
    with pytest.raises(BadInputError, match=r"pixels are 0.5 x 1 m .*not square: pass --target"):
        GsdPlan(expected=0.5).apply(scene, "w")
    image, ids, _ = GsdPlan(target=1.0).apply(scene, "w")  # a target squares them
    assert ids.shape == (8, 4)


def test_resampling_by_strips_equals_one_pass_and_is_area_mean_and_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tif_pair(tmp_path, "s", *_scene(1, 40, 24), pixel=0.5)
    scene = read_labeled(str(tmp_path / "s_sat.tif"), str(tmp_path / "s_mask.tif"))
    whole = resample_scene(scene, (20, 12))
    monkeypatch.setattr(resolution, "STRIP_SOURCE_ROWS", 6)  # 3 output rows a strip
    image, ids = resample_scene(scene, (20, 12))
    assert np.array_equal(image, whole[0]) and np.array_equal(ids, whole[1])
    blocks = scene.image.astype(float).reshape(20, 2, 12, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(image, np.rint(blocks).astype(np.uint8))
    counts = np.stack(
        [(scene.class_ids == c).reshape(20, 2, 12, 2).sum(axis=(1, 3)) for c in range(7)]
    )
    assert np.array_equal(ids, counts.argmax(axis=0))  # argmax: ties to the lower class


def test_target_gsd_resamples_every_scene_and_the_manifest_records_it(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    scenes = {
        "fine": (_scene(1, 64, 48), {"pixel": 0.5}),  # 0.5 m → 1 m: 32 x 24
        "feet": (_scene(2, 40, 40), {"pixel": 2.5, "crs": "EPSG:2222"}),  # 0.762 m → 30 x 30
        "same": (_scene(3, 32, 32), {"pixel": 1.0}),  # already at 1 m: untouched
    }
    for scene_id, ((image, ids), grid) in scenes.items():
        _tif_pair(raw, scene_id, image, ids, **grid)
    _tif_pair(
        raw, "globe", *_scene(4, 32, 32), crs="EPSG:4326", transform=from_origin(10, 60, 0.5, 0.5)
    )
    options = PreprocessOptions(str(raw), str(out), patch_size=16, val_fraction=0.0, target_gsd=1.0)
    manifest = run_preprocess(options)
    assert manifest.gsd is not None
    assert manifest.gsd.to_dict() == {
        "metres_per_pixel": 1.0,
        "native": {"0.5": 1, "0.762": 1, "1": 1},
        "target": 1.0,
        "resampling": {
            "image": {"down": "area", "up": "bilinear"},
            "labels": {"down": "mode", "up": "nearest"},
        },
    }
    assert manifest.options["target_gsd"] == 1.0
    root = resolve_dataset(str(out))
    assert read_manifest(root).gsd == manifest.gsd
    patches = _patches(root)
    assert {p["y"] for p in patches["fine"]} == {0, 16}
    assert {p["x"] for p in patches["fine"]} == {0, 8}  # 24 columns: 0 and 8, flush
    assert {p["y"] for p in patches["feet"]} == {0, 14}  # 30 rows
    image, ids = scenes["fine"][0]
    first = next(p for p in patches["fine"] if (p["y"], p["x"]) == (0, 0))
    block = image[:32, :32].astype(float).reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(first["image"], np.rint(block).astype(np.uint8))
    same = next(p for p in patches["same"] if (p["y"], p["x"]) == (16, 16))
    assert np.array_equal(same["class_ids"], scenes["same"][0][1][16:, 16:])
    errors = _errors(root)
    assert list(errors) == ["globe_sat.tif"]  # 16° of latitude: no one GSD
    assert "varies by" in errors["globe_sat.tif"] and "gdalwarp" in errors["globe_sat.tif"]
    assert manifest.errors == 1


def test_gsd_declares_jpeg_scenes_and_the_manifest_says_so(tmp_path: Path, scene_files) -> None:  # type: ignore[no-untyped-def]
    raw, out = tmp_path / "raw", tmp_path / "out"
    for i in range(2):
        scene_files.write_scene(raw, f"j{i}", *scene_files.tiny_scene(i, 16, 16))
    default = run_preprocess(PreprocessOptions(str(raw), str(out), patch_size=16))
    assert default.gsd is not None and default.gsd.to_dict()["metres_per_pixel"] == 0.5
    assert default.gsd.native == {"0.5": 2} and default.gsd.target is None
    declared = run_preprocess(PreprocessOptions(str(raw), str(out), patch_size=8, gsd=2.390625))
    assert declared.gsd is not None
    assert (declared.gsd.metres, declared.gsd.native) == (2.390625, {"2.39062": 2})
    assert declared.options["gsd"] == 2.390625
    assert declared.patch_count("train") + declared.patch_count("val") == 2 * 4  # not resampled
