"""A labeled pair read and checked as one: both decode, same size, the file at fault named."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.core.errors import BadInputError
from pipelines.io.labeled import read_labeled_scene


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def test_a_good_pair_decodes_to_pixels_and_class_ids(tmp_path: Path) -> None:
    image = np.full((6, 8, 3), 90, np.uint8)
    mask = np.zeros((6, 8, 3), np.uint8)
    mask[:, :4] = (0, 255, 255)  # urban, class 0
    (tmp_path / "1_sat.jpg").write_bytes(_encoded(image, "JPEG"))
    (tmp_path / "1_mask.png").write_bytes(_encoded(mask, "PNG"))
    pixels, ids = read_labeled_scene(str(tmp_path / "1_sat.jpg"), str(tmp_path / "1_mask.png"))
    assert pixels.shape == (6, 8, 3) and pixels.dtype == np.uint8
    assert ids.dtype == np.uint8 and ids.shape == (6, 8)
    assert (ids[:, :4] == 0).all() and (ids[:, 4:] == 6).all()  # black is unknown, class 6


def test_a_bad_pair_names_the_file_at_fault(tmp_path: Path) -> None:
    image_uri, mask_uri = str(tmp_path / "2_sat.jpg"), str(tmp_path / "2_mask.png")
    Path(image_uri).write_bytes(_encoded(np.zeros((6, 8, 3), np.uint8), "JPEG"))
    Path(mask_uri).write_bytes(_encoded(np.zeros((6, 9, 3), np.uint8), "PNG"))
    with pytest.raises(BadInputError, match="mask is 6x9 but its image") as error:
        read_labeled_scene(image_uri, mask_uri)
    assert error.value.uri == mask_uri
    Path(image_uri).write_bytes(b"garbage")
    with pytest.raises(BadInputError) as error:
        read_labeled_scene(image_uri, mask_uri)
    assert error.value.uri == image_uri
