"""Scene discovery and decoding: every format, duplicate ids, GeoTIFFs, finished masks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.errors import BadInputError
from pipelines.io.scenes import Scene, decode_scene, decoded_by_pil, find_scenes


def _image(height: int, width: int, seed: int) -> np.ndarray:
    """Blocks of 8 px plus pixel noise: photo-like enough for lossy codecs to be tested."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3)).astype(np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), np.uint8))[:height, :width]
    noise = rng.integers(-20, 21, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def _encode(image: np.ndarray, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_decode_scene_reads_tiffs_by_window_and_jpeg_png_whole_through_gdal():
    image = _image(21, 34, seed=4)
    lzw = _encode(image, "TIFF", compression="tiff_lzw")
    for uri in ("a_sat.tif", "gs://b/a_sat.TIFF", "a_sat.tiff"):
        np.testing.assert_array_equal(decode_scene(lzw, uri), image)
    np.testing.assert_array_equal(decode_scene(_encode(image, "PNG"), "a_sat.png"), image)
    jpeg = _encode(image, "JPEG", quality=95)
    # JPEG/PNG decode through GDAL (pipelines.io.imaging): the pixels rasterio reads directly.
    import warnings

    from rasterio.io import MemoryFile

    with warnings.catch_warnings(), MemoryFile(jpeg) as memfile, memfile.open() as dataset:
        warnings.simplefilter("ignore")
        gdal = dataset.read([1, 2, 3]).transpose(1, 2, 0)
    np.testing.assert_array_equal(decode_scene(jpeg, "a_sat.jpg"), gdal)
    with pytest.raises(BadInputError, match=r"a_sat\.jpg"):
        decode_scene(b"not a jpeg at all", "gs://b/a_sat.jpg")
    with pytest.raises(BadInputError, match=r"gs://b/a_sat\.tif: cannot open as a raster"):
        decode_scene(b"II*\x00garbage", "gs://b/a_sat.tif")
    gray = _encode(image[..., 0], "TIFF")
    with pytest.raises(BadInputError, match=r"a_sat\.tif: has 1 bands"):
        decode_scene(gray, "a_sat.tif")
    assert [decoded_by_pil(u) for u in ("a_sat.JPG", "a_sat.png", "a_sat.tif")] == [
        True,
        True,
        False,
    ]


def test_find_scenes_matches_all_formats_and_reports_duplicate_ids(tmp_path: Path):
    for name in ["1_sat.jpg", "1_sat.png", "2_sat.tif", "3_sat.TIFF", "4_mask.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    scenes = find_scenes(str(tmp_path))
    assert [(s.scene_id, Path(s.uri).name, bool(s.problem)) for s in scenes] == [
        ("1", "1_sat.jpg", False),
        ("1", "1_sat.png", True),
        ("2", "2_sat.tif", False),
        ("3", "3_sat.TIFF", False),
    ]
    assert "duplicate" in scenes[1].problem
    single = find_scenes(str(tmp_path / "2_sat.tif"))
    assert [s.scene_id for s in single] == ["2"]


def test_find_scenes_in_a_missing_folder_is_an_error_not_an_empty_run(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        find_scenes(str(tmp_path / "nope"))
    assert find_scenes(str(tmp_path)) == []
    assert Scene("1", "u") == Scene("1", "u", "")  # no problem unless one is named
