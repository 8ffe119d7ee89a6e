"""The DeepGlobe class palette and the challenge's mask decode rule.

The challenge warns that mask values "may not be pure 0 and 255" (JPEG-like noise from
resampling), and prescribes: binarize each channel at 128, then look the color up. After
binarizing, a pixel is one of 8 corner colors of the RGB cube; 7 are classes and the 8th (pure
red) is not in the palette, so it decodes to ``unknown`` like every other off-palette color.
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "urban",
    "agriculture",
    "rangeland",
    "forest",
    "water",
    "barren",
    "unknown",
)
CLASS_COLORS: np.ndarray = np.array(
    [
        (0, 255, 255),
        (255, 255, 0),
        (255, 0, 255),
        (0, 255, 0),
        (0, 0, 255),
        (255, 255, 255),
        (0, 0, 0),
    ],
    dtype=np.uint8,
)
NUM_CLASSES: int = len(CLASS_NAMES)
UNKNOWN: int = CLASS_NAMES.index("unknown")
# The 6 classes the challenge scores (mIoU is their mean); `unknown` is never scored.
ACTIVE_CLASSES: tuple[int, ...] = tuple(i for i in range(NUM_CLASSES) if i != UNKNOWN)
BINARIZE_THRESHOLD: int = 128


def _corner_code(bits: np.ndarray) -> np.ndarray:
    """Pack per-channel 0/1 bits (..., 3) into a corner index r*4 + g*2 + b in 0..7."""
    return (bits[..., 0] << 2) | (bits[..., 1] << 1) | bits[..., 2]


def _build_corner_lut() -> np.ndarray:
    """Class id for each of the 8 binarized colors; corners outside the palette are unknown."""
    lut = np.full(8, UNKNOWN, dtype=np.uint8)
    codes = _corner_code((CLASS_COLORS >= BINARIZE_THRESHOLD).astype(np.uint8))
    lut[codes] = np.arange(NUM_CLASSES, dtype=np.uint8)
    return lut


CORNER_TO_CLASS: np.ndarray = _build_corner_lut()


def decode_mask(rgb: np.ndarray) -> np.ndarray:
    """RGB mask (H, W, 3) uint8 → class ids (H, W) uint8 by the challenge rule.

    ``>> 7`` is the threshold at 128 for uint8 and, unlike a boolean compare, keeps the bits in
    uint8 so the whole decode is three shifts, two ors and one table lookup (~20 ms a scene).
    """
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise ValueError(f"mask must be (H, W, 3) RGB, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise ValueError(f"mask must be uint8, got {rgb.dtype}")
    return CORNER_TO_CLASS[_corner_code(rgb >> 7)]


def encode_mask(class_ids: np.ndarray) -> np.ndarray:
    """Class ids (H, W) → RGB mask (H, W, 3) uint8 in DeepGlobe colors."""
    if class_ids.max(initial=0) >= NUM_CLASSES:
        raise ValueError(f"class id {int(class_ids.max())} is outside 0..{NUM_CLASSES - 1}")
    return CLASS_COLORS[class_ids]


def one_hot(class_ids: np.ndarray) -> np.ndarray:
    """Class ids (H, W) → one-hot (H, W, 7) uint8; the exact inverse of ``argmax(-1)``."""
    return np.eye(NUM_CLASSES, dtype=np.uint8)[class_ids]


def class_pixel_counts(class_ids: np.ndarray) -> np.ndarray:
    """Pixels per class (7,) int64, palette order."""
    return np.bincount(class_ids.ravel(), minlength=NUM_CLASSES).astype(np.int64)
