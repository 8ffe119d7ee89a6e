"""Scene images in storage: which scenes a folder holds, their pixels, and which are done.

Shared by every stage that reads ``{id}_sat.*`` scenes the way batch inference does: the predict
job, evaluation's pictures and the drop flow's validation. One decoder for all of them, so an
image a drop accepts is an image inference can read (GeoTIFF included).

- :func:`find_scenes`: one listing call → :class:`Scene` per id; duplicate images of an id are
  kept as scenes with a ``problem`` (bad input, named rather than dropped).
- :func:`decode_scene`: bytes → (H, W, 3) uint8; DeepGlobe's JPEG/PNG through PIL (the
  decoder training's records were made with, so pixels match exactly), every other format
  (GeoTIFF, ...) through rasterio/GDAL, the one raster reader (``pipelines.io.raster_read``).
- :func:`decoded_by_pil`: which of the two a scene goes through.

Which scenes are done is not a file-name question: see ``pipelines.predict.records``.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from pipelines.core.catalog import (
    IMAGE,
    build_catalog,
    scene_file,
    scene_key,
    world_file_candidates,
)
from pipelines.core.errors import BadInputError
from pipelines.core.naming import scene_id_of
from pipelines.io import imaging, storage

# Scene images PIL decodes (DeepGlobe's formats); anything else is a raster for GDAL.
PIL_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Scene:
    """One input scene; ``problem`` is set for scenes rejected before decoding."""

    scene_id: str
    uri: str
    problem: str = ""
    world_file: str | None = None  # a .jgw/.pgw/.wld beside a JPEG/PNG: it is georeferenced


def find_scenes(input_uri: str) -> list[Scene]:
    """Scene images in a folder (one level), or the one file ``input_uri`` names.

    One listing call, whatever the number of scenes; which files are scenes is the scene
    catalog's answer (:mod:`pipelines.core.catalog`: ids compared up to case and Unicode form,
    names taken literally). When an id has several images (say ``1_sat.jpg`` and ``1_SAT.png``)
    the first in ``naming.SCENE_IMAGE_SUFFIXES`` order is used and the others become bad input
    (named, not silently dropped).
    """
    if scene_id_of(input_uri) is not None and storage.exists(input_uri):
        sidecars = [c for c in world_file_candidates(input_uri) if storage.exists(c)]
        candidates = [input_uri, *sidecars[:1]]
    else:
        storage.check_readable_root(input_uri)
        candidates = storage.list_files(input_uri)
    catalog = build_catalog(candidates)
    scenes = [
        Scene(s.scene_id, s.image.uri, world_file=s.world_file)
        for s in catalog.images
        if s.image is not None
    ]
    scenes += [
        Scene(p.scene_id, p.uri, p.reason)
        for p in catalog.problems
        if (found := scene_file(p.uri)) is not None and found.role == IMAGE
    ]
    return sorted(scenes, key=lambda s: (scene_key(s.scene_id), bool(s.problem), s.uri))


def decoded_by_pil(uri: str) -> bool:
    """True for DeepGlobe-style JPEG/PNG scenes (PIL), False for rasters read through GDAL."""
    return uri.lower().endswith(PIL_SUFFIXES)


def decode_scene(data: bytes, uri: str) -> np.ndarray:
    """Scene bytes → (H, W, 3) uint8: JPEG/PNG through PIL, other rasters through rasterio.

    Raises ``BadInputError`` (naming ``uri``) for bytes that no decoder reads, or a raster that
    is not 8-bit RGB(A). Whole-scene decoding is for small scenes (evaluation pictures, drop
    validation); batch inference reads rasters by windows instead.
    """
    if decoded_by_pil(uri):
        return imaging.decode_image_bytes(data, uri)
    from pipelines.core.geo import PixelWindow
    from pipelines.io.raster_read import open_raster, read_window

    with tempfile.TemporaryDirectory(prefix="landcover-scene-") as tmp:
        path = os.path.join(tmp, os.path.basename(uri.rstrip("/")) or "scene")
        with open(path, "wb") as handle:
            handle.write(data)
        try:
            with open_raster(path) as reader:
                reader.uri, reader.info = uri, dataclasses.replace(reader.info, uri=uri)
                info = reader.info
                rgb, _ = read_window(reader, PixelWindow(0, 0, info.height, info.width))
                return rgb
        except BadInputError as error:
            raise BadInputError(uri, error.reason.replace(path, uri)) from None
