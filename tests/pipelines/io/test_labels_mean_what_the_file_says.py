"""Labels mean what the file says: a colour table is a legend over class ids, alpha 0 is
unlabelled in masks and no data in scenes, in a PNG as in a GeoTIFF."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from pipelines.core.errors import BadInputError
from pipelines.core.palette import CLASS_COLORS, UNKNOWN, MaskRule
from pipelines.io.imaging import decode_image_and_valid, decode_mask_bytes

IDS = (np.arange(48).reshape(6, 8) % 7).astype(np.uint8)
# What a GIS tool writes as a legend: class 0 drawn red, 1 green, … (not DeepGlobe's colours).
LEGEND = {k: (c, 255 - c, (c * 7) % 256, 255) for k, c in enumerate(range(10, 80, 10))}


def _tif(path: Path, bands: np.ndarray, colormap: dict | None = None, **extra) -> bytes:
    count = 1 if bands.ndim == 2 else bands.shape[0]
    height, width = bands.shape[-2:]
    profile = {"driver": "GTiff", "height": height, "width": width, "count": count}
    with rasterio.open(path, "w", dtype="uint8", **profile, **extra) as dst:
        dst.write(bands if count > 1 else bands[None])
        if colormap:
            dst.write_colormap(1, colormap)
    return path.read_bytes()


def _png(array: np.ndarray, mode: str | None = None, palette: list[int] | None = None) -> bytes:
    image = Image.fromarray(array, mode)
    if palette is not None:
        image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_class_id_geotiff_with_a_colour_table_holds_class_ids(tmp_path: Path) -> None:
    """It was decoded by its colours: every class turned into another (or unknown), 0 errors."""
    data = _tif(tmp_path / "legend_mask.tif", IDS, LEGEND)
    assert np.array_equal(decode_mask_bytes(data, "legend_mask.tif"), IDS)
    # Told otherwise: its colours are the classes (DeepGlobe's table here).
    deepglobe = {k: (*map(int, CLASS_COLORS[k]), 255) for k in range(7)}
    coloured = _tif(tmp_path / "c_mask.tif", IDS, deepglobe)
    assert np.array_equal(decode_mask_bytes(coloured, "c_mask.tif", MaskRule("rgb")), IDS)


def test_a_palette_png_holds_class_ids_and_off_map_values_say_how_to_read_colours() -> None:
    palette = [v for k in range(7) for v in LEGEND[k][:3]]
    assert np.array_equal(decode_mask_bytes(_png(IDS, "P", palette), "a_mask.png"), IDS)
    off = np.full((4, 4), 9, np.uint8)
    with pytest.raises(BadInputError, match="--mask-kind rgb"):
        decode_mask_bytes(_png(off, "P", palette * 2), "b_mask.png")


def test_alpha_zero_is_unlabelled_in_masks_png_and_geotiff_alike(tmp_path: Path) -> None:
    """PNG alpha was dropped: transparent parts of a mask trained as whatever colour they held."""
    rgb = CLASS_COLORS[IDS]
    alpha = np.full(IDS.shape, 255, np.uint8)
    alpha[:, :3] = 0
    expected = IDS.copy()
    expected[:, :3] = UNKNOWN
    png = _png(np.dstack([rgb, alpha]), "RGBA")
    assert np.array_equal(decode_mask_bytes(png, "a_mask.png"), expected)
    bands = np.concatenate([rgb.transpose(2, 0, 1), alpha[None]])
    tif = _tif(tmp_path / "a_mask.tif", bands, photometric="RGB", alpha="YES")
    assert np.array_equal(decode_mask_bytes(tif, "a_mask.tif"), expected)


def test_alpha_zero_is_no_data_in_png_scenes() -> None:
    rgb = np.full((6, 8, 3), 120, np.uint8)
    alpha = np.full((6, 8), 255, np.uint8)
    alpha[0] = 0
    image, valid = decode_image_and_valid(_png(np.dstack([rgb, alpha]), "RGBA"), "a_sat.png")
    assert np.array_equal(image, rgb)
    assert not valid[0].any() and valid[1:].all()
    _, all_valid = decode_image_and_valid(_png(rgb), "b_sat.png")
    assert all_valid.all()
