"""One scene's work: read and check it, cut it into serialized patches, count its classes.

Plain functions on decoded arrays, called by the one DoFn that does the per-scene work
(``transforms.ProcessSceneFn``) and, directly, by ``landcover bench preprocess``.

**Edge rule** (:mod:`pipelines.core.tiling`): a side that is not a multiple of the patch size
gets one extra patch shifted inward, flush with the edge; nothing is padded or dropped.
:func:`class_pixels` counts every *scene* pixel once (the overlap of those edge patches is not
counted twice), so the manifest's totals equal a decode of the masks themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipelines.core.errors import BadInputError
from pipelines.core.palette import NUM_CLASSES, MaskRule
from pipelines.core.records import RecordFormat
from pipelines.core.tiling import patch_grid
from pipelines.io.labeled import read_labeled_scene
from pipelines.io.records import encode_patch
from pipelines.preprocess.pairing import ScenePair


@dataclass(frozen=True)
class SceneStats:
    """What one written scene adds to the manifest."""

    split: str
    patches: int
    class_pixels: tuple[int, ...]  # palette order, over the scene's pixels (each pixel once)
    scene_id: str


def load_scene(
    pair: ScenePair, patch_size: int, rule: MaskRule | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pipelines.io.labeled.read_labeled_scene`, plus the patch-size check this job needs.

    Raises BadInputError naming the file at fault (undecodable, corrupt, a mask no declared
    rule reads, size or grid mismatch, too small).
    """
    image, class_ids = read_labeled_scene(pair.image_uri, pair.mask_uri, rule)
    height, width = class_ids.shape
    if min(height, width) < patch_size:
        raise BadInputError(
            pair.image_uri, f"scene is {height}x{width}, smaller than the patch size {patch_size}"
        )
    return image, class_ids


def scene_records(
    scene_id: str,
    image: np.ndarray,
    class_ids: np.ndarray,
    patch_size: int,
    fmt: RecordFormat,
) -> Iterator[bytes]:
    """Serialized patches of one decoded scene, row-major over the tiling grid."""
    height, width = class_ids.shape
    for y, x in patch_grid(height, width, patch_size):
        window = (slice(y, y + patch_size), slice(x, x + patch_size))
        yield encode_patch(scene_id, y, x, image[window], class_ids[window], fmt)


def class_pixels(class_ids: np.ndarray) -> tuple[int, ...]:
    """Pixels per class, palette order.

    Seven ``count_nonzero(ids == k)`` passes over uint8 take ~2 ms a scene where ``bincount``
    (which first widens every pixel to int64) takes ~12; ids come from the palette decode, so
    every pixel is one of the seven.
    """
    return tuple(int(np.count_nonzero(class_ids == k)) for k in range(NUM_CLASSES))
