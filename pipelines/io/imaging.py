"""Decoding and encoding scene files.

Decoding forces the whole file through the codec (``Image.load``), so a truncated JPEG or PNG
fails here, with its URI, instead of yielding a half-grey scene that trains silently wrong.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from pipelines.core.errors import BadInputError
from pipelines.core.palette import decode_mask


def _open_rgb(data: bytes, uri: str) -> np.ndarray:
    if not data:
        raise BadInputError(uri, "empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8)
    except UnidentifiedImageError:
        raise BadInputError(
            uri, "not an image PIL can identify (corrupt or wrong format)"
        ) from None
    # PIL's own guard (~179 Mpx, 30x a DeepGlobe scene) stays on: beyond it a scene's class
    # probabilities alone would not fit in a worker's memory.
    except Image.DecompressionBombError as exc:
        raise BadInputError(uri, f"image too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated / corrupt streams
        raise BadInputError(uri, f"cannot decode image: {exc}") from None


def decode_image_bytes(data: bytes, uri: str) -> np.ndarray:
    """Scene image bytes (JPEG/PNG/TIFF PIL can read) → (H, W, 3) uint8 RGB."""
    return _open_rgb(data, uri)


def decode_mask_bytes(data: bytes, uri: str) -> np.ndarray:
    """Mask PNG bytes → (H, W) uint8 class ids by the challenge rule."""
    return decode_mask(_open_rgb(data, uri))


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


def decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img)
