"""A labeled scene (``{id}_sat.jpg`` + ``{id}_mask.png``) read and checked as a pair.

The one definition of what makes a pair usable at all (both decode, same size): preprocessing
reads scenes with it, and the imagery-drop flow checks drops with it, so a drop it accepts is a
scene preprocessing accepts.
"""

from __future__ import annotations

import numpy as np

from pipelines.core.errors import BadInputError
from pipelines.io import storage
from pipelines.io.imaging import decode_image_bytes, decode_mask_bytes


def read_labeled_scene(image_uri: str, mask_uri: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and decode an image/mask pair: (image (H, W, 3) uint8, class ids (H, W) uint8).

    Raises BadInputError naming the file at fault.
    """
    image = decode_image_bytes(storage.read_bytes(image_uri), image_uri)
    class_ids = decode_mask_bytes(storage.read_bytes(mask_uri), mask_uri)
    if image.shape[:2] != class_ids.shape:
        (ih, iw), (mh, mw) = image.shape[:2], class_ids.shape
        raise BadInputError(mask_uri, f"mask is {mh}x{mw} but its image {image_uri} is {ih}x{iw}")
    return image, class_ids
