"""A labeled scene (an image and its mask) read and checked as a pair.

The one definition of what makes a pair usable at all: preprocessing reads scenes with it, and
the imagery-drop flow checks drops with it, so a drop it accepts is a scene preprocessing
accepts. Both files go through the raster reader (:mod:`pipelines.io.raster_read`, GDAL) with
strict decoding (:func:`pipelines.io.imaging.strict_decoding`): DeepGlobe's
``{id}_sat.jpg`` + ``{id}_mask.png`` and GeoTIFF pairs ``{id}_sat.tif`` + ``{id}_mask.tif``
alike.

The pair must agree: same size, and, when both are georeferenced, the same transform and CRS
(a label raster on another grid would label the wrong ground). Image pixels that are nodata
(nodata value, internal mask or alpha) are labeled ``unknown``, which training never scores.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError

from pipelines.core.errors import BadInputError
from pipelines.core.geo import PixelWindow
from pipelines.core.palette import UNKNOWN, MaskRule
from pipelines.io import storage
from pipelines.io.imaging import (
    check_decode_size,
    dataset_class_ids,
    decode_failure,
    strict_decoding,
)
from pipelines.io.raster_read import RasterInfo, RasterReader, open_raster, read_window


def _is_empty(uri: str) -> bool:
    if not storage.is_remote(uri):
        return os.path.isfile(uri) and os.path.getsize(uri) == 0
    return storage.size_of(uri) == 0


def same_crs(a: str, b: str) -> bool:
    """True for two WKT CRSs that are the same (spelled alike, or equal once parsed)."""
    if a == b:
        return True
    try:
        return bool(CRS.from_wkt(a) == CRS.from_wkt(b))
    except CRSError:
        return False


def check_aligned(image: RasterInfo, mask: RasterInfo) -> None:
    """BadInputError (naming the mask) unless the mask lies on the image's pixel grid."""
    if (mask.height, mask.width) != (image.height, image.width):
        raise BadInputError(
            mask.uri,
            f"mask is {mask.height}x{mask.width} but its image {image.uri} is "
            f"{image.height}x{image.width}",
        )
    if not (image.georeferenced and mask.georeferenced):
        return
    pixel = max(abs(image.transform[0]), abs(image.transform[4]), 1e-12)
    if not all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=pixel * 1e-6)
        for a, b in zip(image.transform, mask.transform, strict=True)
    ):
        raise BadInputError(
            mask.uri,
            f"mask transform {mask.transform} differs from its image's {image.transform} "
            f"({image.uri}): the label raster is on another grid",
        )
    if (image.crs is None) != (mask.crs is None) or (
        image.crs is not None and mask.crs is not None and not same_crs(image.crs, mask.crs)
    ):
        raise BadInputError(
            mask.uri, f"mask CRS differs from its image's ({image.uri}): {mask.crs!r:.80}"
        )


def _open_checked(uri: str):  # type: ignore[no-untyped-def]
    if _is_empty(uri):
        raise BadInputError(uri, "empty file")
    return open_raster(uri)


@dataclass(frozen=True)
class LabeledScene:
    """A decoded pair: pixels, class ids (``unknown`` where the image is nodata), the image's
    validity (False where nodata) and its raster facts (georeference: what its GSD is read
    from)."""

    image: np.ndarray  # (H, W, 3) uint8
    class_ids: np.ndarray  # (H, W) uint8
    valid: np.ndarray  # (H, W) bool
    info: RasterInfo


def read_labeled_scene(
    image_uri: str, mask_uri: str, rule: MaskRule | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and decode an image/mask pair: (image (H, W, 3) uint8, class ids (H, W) uint8).

    ``rule`` says how mask pixels become class ids (default: ``auto`` with the identity label
    map). Raises BadInputError naming the file at fault.
    """
    scene = read_labeled(image_uri, mask_uri, rule)
    return scene.image, scene.class_ids


def read_labeled(image_uri: str, mask_uri: str, rule: MaskRule | None = None) -> LabeledScene:
    """:func:`read_labeled_scene` with the image's validity and raster facts."""
    rule = rule or MaskRule()
    with strict_decoding():
        with _open_checked(image_uri) as image:
            check_decode_size(image_uri, image.info.height, image.info.width)
            rgb, valid = read_window(image, PixelWindow(0, 0, image.info.height, image.info.width))
            image_info = image.info
        mask: RasterReader
        with _open_checked(mask_uri) as mask:
            check_aligned(image_info, mask.info)
            try:
                class_ids = dataset_class_ids(mask.dataset, mask_uri, rule)
            except RasterioError as exc:
                raise decode_failure(mask_uri, exc) from None
    if not valid.all():
        class_ids[~valid] = UNKNOWN
    return LabeledScene(rgb, class_ids, valid, image_info)
