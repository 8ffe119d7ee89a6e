"""Decoding and encoding scene files: GDAL (through rasterio) decodes, PIL only encodes PNG.

**One decoder for every format**: JPEG, PNG and (Geo)TIFF scenes and masks are all decoded by
GDAL, the same library :mod:`pipelines.io.raster_read` reads georeferenced scenes with, so
training and inference see the same pixels of the same file. GDAL runs strict here
(:data:`STRICT_DECODING`): ``GDAL_ERROR_ON_LIBJPEG_WARNING=TRUE`` turns libjpeg's "Corrupt JPEG
data" warnings (bad markers, damaged entropy-coded data) into errors, where PIL and a lenient
GDAL decode such a file into a plausible, silently wrong picture; and truncated PNGs fail.
(No decoder catches every flipped bit: a flip inside entropy-coded data that stays valid
Huffman code only changes pixel values.)

A mask's pixels become class ids by a declared rule (:class:`pipelines.core.palette.MaskRule`),
never by a guess, and **as the file says**: 8-bit RGB(A) masks by their colors and the
challenge rule; a single-band raster with a color table holds class ids (the table is a legend,
what GIS tools write beside class ids; ``--mask-kind rgb`` reads its colors instead);
single-band masks without one as class ids through a label map when the run (or a GeoTIFF
label raster) says so; anything else is bad input naming the reason. Pixels the file marks as
holding nothing (alpha 0, its mask band, its nodata value) are ``unknown``: unlabelled, in a
PNG as in a GeoTIFF. In scene images alpha 0 is no data (:func:`decode_image_and_valid`).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import rasterio
from PIL import Image
from rasterio.enums import ColorInterp
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rasterio.windows import Window

from pipelines.core.errors import BadInputError
from pipelines.core.naming import is_tiff
from pipelines.core.palette import (
    CORNER_TO_CLASS,
    UNKNOWN,
    MaskRule,
    decode_mask,
    map_labels,
    mask_band_codes,
    palette_to_rgb,
)
from pipelines.io.raster_read import read_interleaved

# GDAL settings of every decode. Corrupt JPEG data is an error, not a warning on stderr. GDAL
# 3.10 reads whole non-interlaced PNGs through a libdeflate fast path that decodes a TRUNCATED
# file without any error (measured: a PNG cut at half its bytes reads "fine", rows zero-filled);
# libpng's row-by-row path reports "libpng: Read Error" as it should.
STRICT_DECODING: dict[str, Any] = {
    "GDAL_ERROR_ON_LIBJPEG_WARNING": True,
    "GDAL_PNG_WHOLE_IMAGE_OPTIM": False,
}
# Scenes are decoded whole (preprocessing cuts patches from the decoded scene): beyond this
# many pixels (PIL's own guard, ~179 Mpx, 30x a DeepGlobe scene) a scene's pixels and labels
# would not fit a worker's memory. Such a file is bad input, not a crashed worker.
MAX_DECODE_PIXELS = 2 * 89_478_485


def check_decode_size(uri: str, height: int, width: int) -> None:
    """BadInputError when a ``height`` x ``width`` raster is too large to decode whole."""
    if height * width > MAX_DECODE_PIXELS:
        raise BadInputError(
            uri,
            f"image too large to decode safely: {height}x{width} px is over the "
            f"{MAX_DECODE_PIXELS} px limit of a whole-scene decode",
        )


@contextlib.contextmanager
def strict_decoding() -> Iterator[None]:
    """GDAL configured for decoding scene files (see :data:`STRICT_DECODING`); plain images
    (a JPEG or PNG has no georeference) raise no warning."""
    with rasterio.Env(**STRICT_DECODING), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def decode_failure(uri: str, exc: Exception) -> BadInputError:
    """A GDAL failure as bad input: rasterio's "Read failed. See previous exception" hides the
    reason in ``__cause__`` (GDAL's message, e.g. libjpeg's "Corrupt JPEG data: …")."""
    reason = " ".join(str(exc.__cause__ or exc).split())
    return BadInputError(uri, f"cannot decode: {reason}")


@contextlib.contextmanager
def _open_bytes(data: bytes, uri: str) -> Iterator[DatasetReader]:
    if not data:
        raise BadInputError(uri, "empty file")
    with strict_decoding(), MemoryFile(data) as memfile:
        try:
            dataset = memfile.open()
        except RasterioError as exc:
            raise BadInputError(uri, f"not an image GDAL can identify: {exc}") from None
        with dataset:
            check_decode_size(uri, dataset.height, dataset.width)
            yield dataset


def _read(
    dataset: DatasetReader, uri: str, indexes: list[int] | int, window: Window | None = None
) -> np.ndarray:
    try:
        return dataset.read(indexes, window=window)
    except RasterioError as exc:
        raise decode_failure(uri, exc) from None


def valid_pixels(dataset: DatasetReader, uri: str, window: Window | None = None) -> np.ndarray:
    """(H, W) bool: the pixels the file holds data for, by GDAL's mask band (the nodata value,
    an alpha band, an internal mask, or all valid when there is none of these)."""
    try:
        return np.asarray(dataset.read_masks(1, window=window)) > 0
    except RasterioError as exc:
        raise decode_failure(uri, exc) from None


def _read_rgb(dataset: DatasetReader, uri: str) -> np.ndarray:
    """Bands 1-3 decoded straight into an (H, W, 3) array (no transposing copy afterwards)."""
    try:
        return read_interleaved(dataset, [1, 2, 3])
    except RasterioError as exc:
        raise decode_failure(uri, exc) from None


def dataset_rgb(dataset: DatasetReader, uri: str) -> np.ndarray:
    """An open image → (H, W, 3) uint8 RGB: 3 bands, RGB + alpha (alpha dropped), a palette
    image through its colors, or one grey band repeated; other layouts are bad input."""
    count, dtype = dataset.count, dataset.dtypes[0] if dataset.count else ""
    if dtype != "uint8":
        raise BadInputError(uri, f"has {dtype or 'no'} pixels; only 8-bit images are supported")
    if count in (3, 4):
        return _read_rgb(dataset, uri)
    if count == 1:
        band = _read(dataset, uri, 1)
        if dataset.colorinterp[0] == ColorInterp.palette:
            try:
                return palette_to_rgb(band, dataset.colormap(1))
            except ValueError as exc:
                raise BadInputError(uri, str(exc)) from None
        return np.repeat(band[..., None], 3, axis=-1)
    raise BadInputError(uri, f"has {count} bands; expected 3 (RGB) or 4 (RGB + alpha)")


# palette.CORNER_TO_CLASS as a 256-entry table for PIL's point(): an 8-bit lookup in C, where
# NumPy's fancy indexing first widens every uint8 index to intp (2448²: ~15 ms against ~30).
_CORNER_TABLE = [int(v) for v in CORNER_TO_CLASS] + [UNKNOWN] * (256 - len(CORNER_TO_CLASS))


def _class_ids_of_codes(codes: np.ndarray) -> np.ndarray:
    """Corner codes (H, W) uint8 → writeable class ids (H, W) uint8: ``CORNER_TO_CLASS[codes]``."""
    height, width = codes.shape
    codes = np.ascontiguousarray(codes)
    image = Image.frombuffer("L", (width, height), codes, "raw", "L", 0, 1)
    return np.array(image.point(_CORNER_TABLE), dtype=np.uint8)


def dataset_class_ids(
    dataset: DatasetReader, uri: str, rule: MaskRule, window: Window | None = None
) -> np.ndarray:
    """An open mask (or a ``window`` of it) → class ids (H, W) uint8 by ``rule`` (see the
    module docstring).

    Pixels equal to a class-id raster's nodata value are ``unknown`` (never scored). Raises
    BadInputError naming the reason for a mask no declared rule reads.
    """
    count = dataset.count
    dtype = dataset.dtypes[0] if count else ""
    if count in (3, 4):
        if rule.kind == "ids":
            raise BadInputError(
                uri, f"mask has {count} bands; --mask-kind ids expects one band of class ids"
            )
        if dtype != "uint8":
            raise BadInputError(
                uri,
                f"{count}-band {dtype} mask: color masks must be 8-bit RGB as DeepGlobe ships "
                "them (a 16-bit color mask is not rescaled by guessing)",
            )
        if count == 4 and dataset.colorinterp[3] != ColorInterp.alpha:
            raise BadInputError(uri, "mask has 4 bands but band 4 is not alpha")
        # Band-first planes, decoded plane by plane: no interleaving at all.
        ids = _class_ids_of_codes(mask_band_codes(_read(dataset, uri, [1, 2, 3], window)))
        return _unlabeled_as_unknown(dataset, uri, ids, window)
    if count != 1:
        raise BadInputError(
            uri, f"mask has {count} bands; expected 3 (RGB), 4 (RGBA) or 1 (palette or class ids)"
        )
    values = _read(dataset, uri, 1, window)
    is_palette = dataset.colorinterp[0] == ColorInterp.palette
    if is_palette and rule.kind == "rgb":
        if dtype != "uint8":
            raise BadInputError(uri, f"palette mask with {dtype} indices; expected 8-bit")
        try:
            ids = decode_mask(palette_to_rgb(values, dataset.colormap(1)))
        except ValueError as exc:
            raise BadInputError(uri, str(exc)) from None
        return _unlabeled_as_unknown(dataset, uri, ids, window)
    if rule.kind == "rgb":
        raise BadInputError(
            uri, f"single-band {dtype} mask without a color table; --mask-kind rgb expects colors"
        )
    if not (rule.ids_declared or is_palette or is_tiff(uri)):
        raise BadInputError(
            uri,
            f"single-band {dtype} mask without a color table: its values may be class ids or "
            "grey levels; say which with --mask-kind ids (values 0-6 are class ids in palette "
            "order) or --label-map VALUE:CLASS_ID,...",
        )
    nodata = dataset.nodata
    valid = np.ones(values.shape, dtype=bool) if nodata is None else values != nodata
    ids = np.full(values.shape, UNKNOWN, dtype=np.uint8)
    try:
        ids[valid] = map_labels(values[valid], rule.effective_label_map)
    except ValueError as exc:
        legend = (
            " (a single-band mask with a color table holds class ids, the table is a legend; "
            "if its colors are the classes, say --mask-kind rgb)"
            if is_palette
            else ""
        )
        raise BadInputError(uri, f"class-id mask: {exc}{legend}") from None
    return _unlabeled_as_unknown(dataset, uri, ids, window)


def _unlabeled_as_unknown(
    dataset: DatasetReader, uri: str, ids: np.ndarray, window: Window | None
) -> np.ndarray:
    """``ids`` with the pixels the mask file marks as holding nothing (alpha 0, its mask band,
    its nodata value) set to ``unknown``: unlabelled, never trained on or scored."""
    ids[~valid_pixels(dataset, uri, window)] = UNKNOWN
    return ids


def decode_image_bytes(data: bytes, uri: str) -> np.ndarray:
    """Scene image bytes (any format GDAL reads: JPEG, PNG, TIFF) → (H, W, 3) uint8 RGB.

    Raises BadInputError naming ``uri`` for empty, unidentifiable, truncated or corrupt data.
    """
    with _open_bytes(data, uri) as dataset:
        return dataset_rgb(dataset, uri)


def decode_image_and_valid(data: bytes, uri: str) -> tuple[np.ndarray, np.ndarray]:
    """Scene image bytes → (H, W, 3) uint8 RGB and (H, W) bool validity: an alpha band's 0
    (a PNG's transparent border, as a GeoTIFF's alpha) is no data, never given a class."""
    with _open_bytes(data, uri) as dataset:
        rgb = dataset_rgb(dataset, uri)
        if dataset.count == 4 and dataset.colorinterp[3] == ColorInterp.alpha:
            return rgb, _read(dataset, uri, 4) != 0
        return rgb, np.ones(rgb.shape[:2], dtype=bool)


def decode_mask_bytes(data: bytes, uri: str, rule: MaskRule | None = None) -> np.ndarray:
    """Mask bytes → (H, W) uint8 class ids by ``rule`` (default: ``auto``, identity ids)."""
    with _open_bytes(data, uri) as dataset:
        return dataset_class_ids(dataset, uri, rule or MaskRule())


def encode_png(array: np.ndarray, compress_level: int = 6, strategy: int | None = None) -> bytes:
    """(H, W) or (H, W, 3) uint8 → PNG bytes (lossless).

    ``strategy`` is a zlib strategy: ``zlib.Z_RLE`` suits masks (flat color regions), writing
    them faster and smaller than the default deflate.
    """
    options: dict[str, Any] = {"compress_level": compress_level}
    if strategy is not None:
        options["compress_type"] = strategy
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def decode_png(data: bytes, uri: str = "<png>") -> np.ndarray:
    """PNG bytes as stored: (H, W) for one band, (H, W, bands) otherwise (GDAL, like every
    other decode here)."""
    with _open_bytes(data, uri) as dataset:
        pixels = _read(dataset, uri, list(range(1, dataset.count + 1)))
    return pixels[0] if pixels.shape[0] == 1 else np.ascontiguousarray(pixels.transpose(1, 2, 0))
