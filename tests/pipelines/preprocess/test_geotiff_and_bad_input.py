"""GeoTIFF training pairs, label maps, and the bad-input corpus: every file ends processed
correctly or dead-lettered with a reason, and the counts reconcile."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from pipelines.core.palette import CLASS_COLORS
from pipelines.io.records import decode_patch, resolve_dataset, split_files, verify_shards
from pipelines.preprocess.job import run_preprocess
from pipelines.preprocess.options import PreprocessOptions

SIZE = 32
# 0.5 m pixels, the GSD of the JPEG/PNG scenes beside them (a dataset has one GSD).
GRID = from_origin(500_000, 4_000_000, 0.5, 0.5)


def _tif(path: Path, bands: np.ndarray, transform=GRID, crs="EPSG:32633", nodata=None) -> None:  # type: ignore[no-untyped-def]
    bands = bands if bands.ndim == 3 else bands[None]
    count, height, width = bands.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": count}
    profile |= {"dtype": str(bands.dtype), "crs": crs, "transform": transform, "nodata": nodata}
    with rasterio.open(path, "w", **profile) as dataset:
        dataset.write(bands)


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if mode == "P":
        image.putpalette(CLASS_COLORS.ravel().tolist())
    image.save(path)


def _jpeg(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _patches(root: str) -> dict[str, list[dict]]:
    import tensorflow as tf

    from pipelines.core.records import RecordFormat

    found: dict[str, list[dict]] = {}
    for split in ("train", "val"):
        for uri in split_files(root, split):
            for raw in tf.data.TFRecordDataset(uri):
                patch = decode_patch(raw.numpy(), RecordFormat())
                found.setdefault(patch["scene_id"], []).append(patch)
    return found


def test_geotiff_pairs_label_maps_and_the_bad_input_corpus(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    raw = tmp_path / "raw"
    raw.mkdir()
    image = rng.integers(0, 256, (3, SIZE, SIZE)).astype(np.uint8)
    ids = rng.integers(0, 7, (SIZE, SIZE)).astype(np.uint8)
    rgb = np.ascontiguousarray(image.transpose(1, 2, 0))
    processed: dict[str, np.ndarray] = {}  # scene id → the class ids its records must hold

    # GeoTIFF pairs: ids 0..6 as they are; a label raster with nodata (→ unknown).
    _tif(raw / "geo_sat.tif", image)
    _tif(raw / "geo_mask.tif", ids)
    processed["geo"] = ids
    with_nodata = ids.copy()
    with_nodata[:4] = 255
    _tif(raw / "Geo Nodata_SAT.TIF", image)  # a space and an upper-case suffix
    _tif(raw / "Geo Nodata_Mask.Tif", with_nodata, nodata=255)
    expected = ids.copy()
    expected[:4] = 6
    processed["Geo Nodata"] = expected
    # DeepGlobe-style scenes whose masks are not RGB, decoded by declared rules.
    (raw / "pal_sat.jpg").write_bytes(_jpeg(rgb))
    _png(raw / "pal_mask.png", ids, "P")  # palette mode → its colors → challenge rule
    processed["pal"] = ids
    (raw / "é..ü_sat.jpg").write_bytes(_jpeg(rgb))  # Unicode and a '..'-looking name
    _png(raw / "é..ü_mask.png", CLASS_COLORS[ids])
    processed["é..ü"] = ids

    bad: dict[str, str] = {}  # file name → reason (substring)
    _png(raw / "grey_mask.png", ids)  # single channel 8-bit: ambiguous without a flag
    (raw / "grey_sat.jpg").write_bytes(_jpeg(rgb))
    bad["grey_mask.png"] = "--mask-kind ids"
    _png(raw / "deep_mask.png", ids.astype(np.uint16) * 300)  # 16-bit, values not class ids
    (raw / "deep_sat.jpg").write_bytes(_jpeg(rgb))
    bad["deep_mask.png"] = "single-band uint16 mask"
    _tif(raw / "out_sat.tif", image)
    _tif(raw / "out_mask.tif", ids + 3)  # values 7..9 are no class id
    bad["out_mask.tif"] = "values not in the label map: 7"
    _tif(raw / "moved_sat.tif", image)
    _tif(raw / "moved_mask.tif", ids, transform=from_origin(500_010, 4_000_000, 0.5, 0.5))
    bad["moved_mask.tif"] = "transform"
    _tif(raw / "crs_sat.tif", image)
    _tif(raw / "crs_mask.tif", ids, crs="EPSG:4326")
    bad["crs_mask.tif"] = "CRS differs"
    _tif(raw / "small_sat.tif", image)
    _tif(raw / "small_mask.tif", ids[:, :-2])
    bad["small_mask.tif"] = "mask is 32x30"
    good_jpeg = _jpeg(rgb)
    # Bit flips that corrupt the entropy-coded data: an RST marker where none belongs, and a
    # run of flipped bits. Lenient decoders return a plausible picture for both.
    start = len(good_jpeg) // 2
    marker = good_jpeg[:start] + b"\xff\xd3" + good_jpeg[start + 2 :]
    flipped = good_jpeg[:start] + bytes(b ^ 0x55 for b in good_jpeg[start : start + 200])
    flipped += good_jpeg[start + 200 :]
    for name, data in {"marker": marker, "flipped": flipped, "cut": good_jpeg[:-300]}.items():
        (raw / f"{name}_sat.jpg").write_bytes(data)
        _png(raw / f"{name}_mask.png", CLASS_COLORS[ids])
        bad[f"{name}_sat.jpg"] = "cannot read window"
    (raw / "a[1]_sat.jpg").write_bytes(good_jpeg)
    _png(raw / "a[1]_mask.png", CLASS_COLORS[ids])
    processed["a[1]"] = ids  # a name with glob characters is a name like any other
    (raw / "dup_sat.jpg").write_bytes(good_jpeg)
    (raw / "dup_sat.tif").write_bytes(b"")
    _png(raw / "dup_mask.png", CLASS_COLORS[ids])
    processed["dup"] = ids
    bad["dup_sat.tif"] = "duplicate image of scene dup"

    out = tmp_path / "out"
    options = PreprocessOptions(str(raw), str(out), patch_size=16, val_fraction=0.2)
    manifest = run_preprocess(options)
    folder = Path(resolve_dataset(str(out)))
    errors = [
        json.loads(line)
        for path in sorted((folder / "errors").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    reasons = {Path(e["uri"]).name: e["reason"] for e in errors}
    assert set(reasons) == set(bad), reasons
    for name, reason in bad.items():
        assert reason in reasons[name], (name, reasons[name])
    # Counts reconcile: every labeled file is in a written scene or in errors/.
    assert manifest.errors == len(bad)
    assert sorted(manifest.train_scene_ids + manifest.val_scene_ids) == sorted(processed)
    assert manifest.total_patches == 4 * len(processed)
    assert verify_shards(str(out)) == []

    patches = _patches(str(out))
    assert set(patches) == set(processed)
    jpeg_form = patches["pal"][0]
    for scene_id, truth in processed.items():
        assert len(patches[scene_id]) == 4
        for patch in patches[scene_id]:
            # Records identical in form whatever the input format.
            assert patch.keys() == jpeg_form.keys()
            for key in ("image", "class_ids"):
                assert patch[key].shape == jpeg_form[key].shape
                assert patch[key].dtype == jpeg_form[key].dtype == np.uint8
            y, x = patch["y"], patch["x"]
            assert np.array_equal(patch["class_ids"], truth[y : y + 16, x : x + 16]), scene_id
    geo = next(p for p in patches["geo"] if (p["y"], p["x"]) == (16, 0))
    assert np.array_equal(geo["image"], rgb[16:32, 0:16])  # GeoTIFF pixels exactly


def test_label_map_and_ids_flag(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    raw = tmp_path / "raw"
    raw.mkdir()
    image = rng.integers(0, 256, (3, SIZE, SIZE)).astype(np.uint8)
    ids = rng.integers(0, 7, (SIZE, SIZE)).astype(np.uint8)
    codes = np.array([10, 20, 30, 40, 50, 60, 0], np.uint16)[ids]  # a foreign legend
    _tif(raw / "a_sat.tif", image)
    _tif(raw / "a_mask.tif", codes)
    (raw / "b_sat.jpg").write_bytes(_jpeg(np.ascontiguousarray(image.transpose(1, 2, 0))))
    _png(raw / "b_mask.png", ids)  # single channel: ids only because the run says so
    out = tmp_path / "out"
    label_map = ((10, 0), (20, 1), (30, 2), (40, 3), (50, 4), (60, 5), (0, 6))
    plus_identity = (*label_map, (1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6))
    options = PreprocessOptions(
        str(raw), str(out), patch_size=16, val_fraction=0.0, label_map=plus_identity
    )
    manifest = run_preprocess(options)
    assert manifest.errors == 0 and manifest.options["label_map"]["10"] == 0
    # The map applies to both: value 0 is class 6 (unknown) by this map, in b's PNG too.
    truth = {"a": ids, "b": np.where(ids == 0, 6, ids)}
    found = _patches(str(out))
    assert set(found) == {"a", "b"}
    for scene_id, patches in found.items():
        for patch in patches:
            y, x = patch["y"], patch["x"]
            assert np.array_equal(patch["class_ids"], truth[scene_id][y : y + 16, x : x + 16])


@pytest.mark.parametrize("compression", ["none", "gzip", "zlib"])
def test_verify_shards_names_a_truncated_or_changed_shard(tmp_path: Path, compression: str) -> None:
    from pipelines import synth
    from pipelines.core.records import RecordFormat

    raw, out = tmp_path / "raw", tmp_path / "out"
    synth.write_scenes(str(raw), 2, size=32, seed=1)
    fmt = RecordFormat("raw", compression)  # type: ignore[arg-type]
    manifest = run_preprocess(
        PreprocessOptions(str(raw), str(out), patch_size=16, val_fraction=0.0, record_format=fmt)
    )
    assert sum(info.records for info in manifest.shards.values()) == manifest.total_patches == 8
    assert verify_shards(str(out)) == []
    shard = Path(split_files(str(out), "train")[0])
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])
    assert [p for p in verify_shards(str(out)) if shard.name in p and "truncated" in p]
    shard.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert [p for p in verify_shards(str(out)) if shard.name in p and "checksum" in p]
