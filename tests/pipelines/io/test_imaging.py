"""Scene decoding: whole-file decode, bad bytes become BadInputError naming the URI."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from models.normalization import normalize_image
from pipelines.core.errors import BadInputError, ErrorRecord
from pipelines.core.palette import encode_mask
from pipelines.io import imaging
from pipelines.io.imaging import (
    decode_image_bytes,
    decode_mask_bytes,
    decode_png,
    encode_png,
)


def _encode(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_decode_image_and_mask() -> None:
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3)).astype(np.uint8)
    assert np.array_equal(decode_image_bytes(_encode(image, "PNG"), "a.png"), image)
    ids = np.arange(7, dtype=np.uint8).repeat(2).reshape(2, 7)
    assert np.array_equal(decode_mask_bytes(_encode(encode_mask(ids), "PNG"), "m.png"), ids)
    jpeg = decode_image_bytes(_encode(image, "JPEG"), "a.jpg")
    assert jpeg.shape == (12, 10, 3) and jpeg.dtype == np.uint8


def test_grey_image_is_converted_to_rgb() -> None:
    grey = np.full((4, 5), 77, np.uint8)
    assert decode_image_bytes(_encode(grey, "PNG"), "g.png").shape == (4, 5, 3)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not an image"),
        (_encode(np.zeros((64, 64, 3), np.uint8), "JPEG")[:200], "missing SOS marker"),
        (_encode(np.full((64, 64, 3), 9, np.uint8), "PNG")[:-30], "cannot decode"),
    ],
    ids=["empty", "not-an-image", "truncated-jpeg", "truncated-png"],
)
def test_bad_bytes_raise_bad_input_naming_the_uri(data: bytes, reason: str) -> None:
    with pytest.raises(BadInputError, match=reason) as info:
        decode_image_bytes(data, "gs://b/x_sat.jpg")
    assert info.value.uri == "gs://b/x_sat.jpg"
    assert "\n" not in info.value.reason
    record = ErrorRecord.from_error(info.value, "preprocess", "x")
    assert record.uri == "gs://b/x_sat.jpg" and record.stage == "preprocess"


def test_png_round_trip_and_normalisation() -> None:
    image = np.random.default_rng(1).integers(0, 256, (6, 7, 3)).astype(np.uint8)
    assert np.array_equal(decode_png(encode_png(image, 1)), image)
    scaled = normalize_image(np.array([0, 255], np.uint8))
    assert scaled.dtype == np.float32 and scaled.tolist() == [0.0, 1.0]


def test_decompression_bomb_is_bad_input_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond MAX_DECODE_PIXELS a whole-scene decode is a per-file error like any other."""
    data = _encode(np.zeros((40, 40, 3), np.uint8), "PNG")
    monkeypatch.setattr(imaging, "MAX_DECODE_PIXELS", 200)  # 1600 px > 200
    with pytest.raises(BadInputError, match="too large") as info:
        decode_image_bytes(data, "gs://b/huge_sat.png")
    assert info.value.uri == "gs://b/huge_sat.png"
