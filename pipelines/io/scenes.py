"""Scene images in storage: which scenes a folder holds, their pixels, and which are done.

Shared by every stage that reads ``{id}_sat.*`` scenes the way batch inference does: the predict
job, evaluation's pictures and the drop flow's validation. One decoder for all of them, so an
image a drop accepts is an image inference can read (GeoTIFF included).

- :func:`find_scenes`: one listing call → :class:`Scene` per id; duplicate images of an id are
  kept as scenes with a ``problem`` (bad input, named rather than dropped).
- :func:`decode_scene`: bytes → (H, W, 3) uint8; TIFFs through ``pipelines.io.tfio``
  (tensorflow-io, with its PIL fallback), other formats through PIL.
- :func:`existing_mask_ids`: ids whose ``{id}_mask.png`` already exists in an output folder,
  what makes a nightly re-run skip finished scenes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.core.naming import MASK_SUFFIX, mask_id_of, scene_id_of, scene_rank
from pipelines.io import imaging, storage, tfio


@dataclass(frozen=True)
class Scene:
    """One input scene; ``problem`` is set for scenes rejected before decoding."""

    scene_id: str
    uri: str
    problem: str = ""


def find_scenes(input_uri: str) -> list[Scene]:
    """Scene images in a folder (one level), or the one file ``input_uri`` names.

    One listing call, whatever the number of scenes. When an id has several images (say
    ``1_sat.jpg`` and ``1_sat.png``) the first in ``naming.SCENE_IMAGE_SUFFIXES`` order is used
    and the others become bad input (named, not silently dropped).
    """
    if scene_id_of(input_uri) is not None and storage.exists(input_uri):
        candidates = [input_uri]
    else:
        storage.check_readable_root(input_uri)
        candidates = storage.match(storage.join(input_uri, "*_sat.*"))
    by_id: dict[str, list[str]] = {}
    for uri in candidates:
        scene_id = scene_id_of(uri)
        if scene_id is not None:
            by_id.setdefault(scene_id, []).append(uri)
    scenes: list[Scene] = []
    for scene_id in sorted(by_id):
        uris = sorted(by_id[scene_id], key=scene_rank)
        scenes.append(Scene(scene_id, uris[0]))
        scenes.extend(
            Scene(scene_id, other, f"duplicate image of scene {scene_id}; {uris[0]} was used")
            for other in uris[1:]
        )
    return scenes


def decode_scene(data: bytes, uri: str) -> np.ndarray:
    """Scene bytes → (H, W, 3) uint8; TIFFs through ``pipelines.io.tfio``, others PIL.

    Raises ``BadInputError`` (naming ``uri``) for bytes that no decoder reads.
    """
    if uri.lower().endswith(tfio.TIFF_SUFFIXES):
        return tfio.decode_tiff(data, uri)
    return imaging.decode_image_bytes(data, uri)


def existing_mask_ids(output_uri: str) -> set[str]:
    """Ids whose mask is already written under ``output_uri`` (one listing call)."""
    # A missing folder or prefix matches nothing; any other listing error must stop the run
    # rather than pass for "nothing done yet" and re-predict everything.
    masks = storage.match(storage.join(output_uri, f"*{MASK_SUFFIX}"))
    return {scene_id for uri in masks if (scene_id := mask_id_of(uri)) is not None}
