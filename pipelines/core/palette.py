"""The DeepGlobe class palette and the challenge's mask decode rule.

The challenge warns that mask values "may not be pure 0 and 255" (JPEG-like noise from
resampling), and prescribes: binarize each channel at 128, then look the color up. After
binarizing, a pixel is one of 8 corner colors of the RGB cube; 7 are classes and the 8th (pure
red) is not in the palette, so it decodes to ``unknown`` like every other off-palette color.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def mask_band_codes(bands: np.ndarray) -> np.ndarray:
    """Band-first RGB mask (3, H, W) uint8 → binarized corner codes (H, W) uint8 in 0..7.

    Each band is a contiguous plane, so the shifts run over contiguous memory and the decoder
    never has to interleave the bands; ``CORNER_TO_CLASS[codes]`` is then
    ``decode_mask(bands.transpose(1, 2, 0))``.
    """
    if bands.ndim != 3 or bands.shape[0] != 3:
        raise ValueError(f"mask bands must be (3, H, W), got shape {bands.shape}")
    if bands.dtype != np.uint8:
        raise ValueError(f"mask must be uint8, got {bands.dtype}")
    code = bands[0] >> 7
    code <<= 1
    code |= bands[1] >> 7
    code <<= 1
    code |= bands[2] >> 7
    return code


def decode_mask_bands(bands: np.ndarray) -> np.ndarray:
    """Band-first RGB mask (3, H, W) uint8 → class ids (H, W) uint8 by the challenge rule."""
    return CORNER_TO_CLASS[mask_band_codes(bands)]


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


# ---- masks that are not DeepGlobe RGB: declared rules, never guesses ---------------------------

# How a mask's pixels are read (``--mask-kind``):
# - ``auto``: by the file's own structure. 8-bit RGB(A) and palette-mode masks are colors (a
#   palette mask through its color table), decoded by the challenge rule; a single-band GeoTIFF
#   (``{id}_mask.tif``) holds class ids; a single-band PNG is ambiguous (a grey rendering? ids?)
#   and is refused unless ``ids`` or a label map says what its values are.
# - ``rgb``: colors only; a single-band mask without a color table is refused.
# - ``ids``: one band of class ids (a palette mask's indices, not its colors).
MASK_KINDS: tuple[str, ...] = ("auto", "rgb", "ids")
# A label map: raster value → class id (palette order). Identity over the palette by default.
LabelMap = tuple[tuple[int, int], ...]
IDENTITY_LABEL_MAP: LabelMap = tuple((i, i) for i in range(NUM_CLASSES))


def parse_label_map(text: str) -> LabelMap:
    """``"1:0,2:1,9:6"`` → ``((1, 0), (2, 1), (9, 6))``; ValueError saying what is wrong.

    Values are non-negative integers (a raster value may be anything a label raster holds);
    targets are class ids in palette order (0..6); each value is mapped once.
    """
    pairs = []
    for item in text.split(","):
        source, sep, target = item.strip().partition(":")
        if not sep:
            raise ValueError(f"label map entry {item.strip()!r} is not VALUE:CLASS_ID")
        try:
            pairs.append((int(source), int(target)))
        except ValueError:
            raise ValueError(
                f"label map entry {item.strip()!r}: both sides must be integers"
            ) from None
    return check_label_map(pairs)


def check_label_map(pairs: object) -> LabelMap:
    """A label map as pairs, checked: ValueError naming the bad entry."""
    if isinstance(pairs, dict):
        pairs = list(pairs.items())
    if not isinstance(pairs, list | tuple) or not pairs:
        raise ValueError("a label map needs at least one VALUE:CLASS_ID entry")
    seen: dict[int, int] = {}
    for pair in pairs:
        try:
            source, target = (int(str(v)) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"label map entry {pair!r} is not a pair of integers") from None
        if source < 0:
            raise ValueError(f"label map value {source} is negative")
        if not 0 <= target < NUM_CLASSES:
            raise ValueError(
                f"label map target {target} (for value {source}) is not a class id "
                f"0..{NUM_CLASSES - 1}"
            )
        if source in seen and seen[source] != target:
            raise ValueError(f"label map maps value {source} twice ({seen[source]} and {target})")
        seen[source] = target
    return tuple(sorted(seen.items()))


def map_labels(values: np.ndarray, label_map: LabelMap = IDENTITY_LABEL_MAP) -> np.ndarray:
    """Raster values (H, W) of any integer dtype → class ids (H, W) uint8 through ``label_map``.

    ValueError naming up to five values the map does not cover (with their pixel counts): an
    unmapped value is never read as a class.
    """
    if values.dtype.kind not in "iu":
        raise ValueError(f"class-id masks hold integers, got {values.dtype} values")
    found, counts = np.unique(values, return_counts=True)
    table = dict(label_map)
    unmapped = [(int(v), int(n)) for v, n in zip(found, counts, strict=True) if int(v) not in table]
    if unmapped:
        listed = ", ".join(f"{v} ({n} px)" for v, n in unmapped[:5])
        more = f" and {len(unmapped) - 5} more" if len(unmapped) > 5 else ""
        raise ValueError(
            f"values not in the label map: {listed}{more}; declare them with --label-map"
        )
    ids = np.empty(values.shape, dtype=np.uint8)
    for value in found:
        ids[values == value] = table[int(value)]
    return ids


def palette_to_rgb(indices: np.ndarray, colormap: dict[int, tuple[int, ...]]) -> np.ndarray:
    """A palette-mode mask's indices (H, W) → its RGB colors (H, W, 3) uint8.

    ValueError when a pixel uses an index the color table does not define.
    """
    lut = np.zeros((256, 3), dtype=np.uint8)
    defined = np.zeros(256, dtype=bool)
    for index, color in colormap.items():
        if 0 <= index < 256:
            lut[index] = color[:3]
            defined[index] = True
    if indices.dtype != np.uint8:
        raise ValueError(f"palette masks hold 8-bit indices, got {indices.dtype}")
    used = np.unique(indices)
    missing = used[~defined[used]]
    if missing.size:
        raise ValueError(f"palette index {int(missing[0])} has no color in the color table")
    return lut[indices]


@dataclass(frozen=True)
class MaskRule:
    """How a run reads its masks: the kind (:data:`MASK_KINDS`) and, for class-id masks, the
    label map (None: the identity over the palette, 0..6)."""

    kind: str = "auto"
    label_map: LabelMap | None = None

    def __post_init__(self) -> None:
        if self.kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {self.kind!r}; valid: {', '.join(MASK_KINDS)}")
        if self.kind == "rgb" and self.label_map is not None:
            raise ValueError("a label map applies to class-id masks, not to --mask-kind rgb")

    @property
    def ids_declared(self) -> bool:
        """True when the run said its single-band masks hold class ids."""
        return self.kind == "ids" or self.label_map is not None

    @property
    def effective_label_map(self) -> LabelMap:
        return IDENTITY_LABEL_MAP if self.label_map is None else self.label_map
