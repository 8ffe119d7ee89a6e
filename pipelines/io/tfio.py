"""GeoTIFF scenes: the one place that imports ``tensorflow_io``.

Satellite scenes often arrive as GeoTIFF (tiled, LZW/Deflate/JPEG-compressed, sometimes with an
alpha band). ``tfio.experimental.image.decode_tiff`` reads them through libtiff's RGBA reader,
which copes with those layouts, and always returns RGBA with the colour PREMULTIPLIED by alpha
(libtiff does that even for unassociated alpha), so colours are divided back by alpha before the
alpha band is dropped (DeepGlobe models take RGB); fully transparent pixels stay black.
Geo-referencing tags are ignored: a predicted mask is pixel-aligned with its scene, so the
scene's own georeference applies to it unchanged.

Decision on a fallback: when ``tensorflow_io`` cannot be imported (its wheels lag TensorFlow
releases and platforms; keeping it optional at run time means a missing wheel costs GeoTIFF
support, not the whole job) or libtiff's RGBA reader rejects a file, the bytes get a second
chance through PIL, which reads plain baseline TIFFs. Only when both fail is the scene bad
input, and the reason names tfio's complaint (the more specific one for a real GeoTIFF).
"""

from __future__ import annotations

import numpy as np

from pipelines.core.errors import BadInputError
from pipelines.io.imaging import decode_image_bytes

TIFF_SUFFIXES: tuple[str, ...] = (".tif", ".tiff")


def _decode_with_tfio(data: bytes) -> np.ndarray:
    import tensorflow_io as tfio

    rgba = tfio.experimental.image.decode_tiff(data).numpy()
    if rgba.ndim != 3 or rgba.shape[-1] not in (3, 4):
        raise ValueError(f"decoded to an unexpected shape {rgba.shape}")
    return unpremultiply(rgba)


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """Premultiplied RGBA (H, W, 4) uint8 → straight RGB (H, W, 3) uint8."""
    rgb = rgba[..., :3]
    alpha = rgba[..., 3:4]
    if (alpha == 255).all():
        return np.ascontiguousarray(rgb)
    scaled = rgb.astype(np.float32) * 255.0 / np.maximum(alpha, 1).astype(np.float32)
    straight = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return np.where(alpha > 0, straight, 0).astype(np.uint8)


def _one_line(exc: BaseException) -> str:
    # TF errors carry the op name and a multi-line trace; the first line is what a person needs.
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(text.split())[:300]


def decode_tiff(data: bytes, uri: str) -> np.ndarray:
    """(Geo)TIFF bytes → (H, W, 3) uint8 RGB; ``BadInputError`` naming ``uri`` if unreadable."""
    if not data:
        raise BadInputError(uri, "empty file")
    try:
        return _decode_with_tfio(data)
    except ImportError:
        return decode_image_bytes(data, uri)  # tfio unusable here: PIL or a clear BadInputError
    except Exception as tfio_error:  # tf.errors.* and friends: try PIL before giving up
        try:
            return decode_image_bytes(data, uri)
        except BadInputError:
            raise BadInputError(
                uri, f"cannot decode TIFF (tensorflow-io: {_one_line(tfio_error)})"
            ) from None
