"""Reading class maps: ids with nodata, DeepGlobe colours, palette PNGs; which file a scene's
map is; bad maps named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines.answers.classmap import find_class_maps, open_class_map
from pipelines.core.errors import BadInputError
from pipelines.core.geo import PixelWindow
from pipelines.core.palette import CLASS_COLORS, encode_mask
from pipelines.io.raster_write import CLASS_NODATA


def ids_grid() -> np.ndarray:
    return (np.arange(12 * 9).reshape(12, 9) % 7).astype(np.uint8)


def test_ids_colours_and_palette_read_the_same(tmp_path: Path, write_map) -> None:
    ids = ids_grid()
    write_map(tmp_path / "a_mask.tif", ids)
    Image.fromarray(encode_mask(ids)).save(tmp_path / "b_mask.png")
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([int(v) for v in CLASS_COLORS.ravel()])
    palette.save(tmp_path / "c_mask.png")
    for name in ("a_mask.tif", "b_mask.png", "c_mask.png"):
        with open_class_map(str(tmp_path / name)) as reader:
            strips = list(reader.strips(5))
        assert [w.height for w, _, _ in strips] == [5, 5, 2]
        np.testing.assert_array_equal(np.concatenate([s for _, s, _ in strips]), ids, name)
        assert all(v.all() for _, _, v in strips)


def test_nodata_is_invalid_and_other_values_are_bad_input(tmp_path: Path, write_map) -> None:
    ids = ids_grid()
    ids[0, 0] = CLASS_NODATA
    ids[11, 8] = 7
    write_map(tmp_path / "a_mask.tif", ids)
    with open_class_map(str(tmp_path / "a_mask.tif")) as reader:
        values, valid = reader.read(PixelWindow(0, 0, 4, 9))
        assert not valid[0, 0] and valid.sum() == 35 and values[0, 1] == 1
        with pytest.raises(BadInputError, match=r"value 7 in window \(row 8..12"):
            reader.read(PixelWindow(8, 0, 4, 9))


def test_a_raster_that_is_no_class_map_is_named(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "x_mask.png")
    with (
        pytest.raises(BadInputError, match=r"x_mask\.png: has 1 band"),
        open_class_map(str(tmp_path / "x_mask.png")),
    ):
        pass


def test_a_scenes_cog_wins_over_its_png_and_other_files_are_ignored(
    tmp_path: Path, write_map
) -> None:
    write_map(tmp_path / "1_mask.tif", ids_grid())
    Image.fromarray(encode_mask(ids_grid())).save(tmp_path / "1_mask.png")
    Image.fromarray(encode_mask(ids_grid())).save(tmp_path / "2_MASK.PNG")
    (tmp_path / "1_probs.tif").write_bytes(b"")
    (tmp_path / "1.done.json").write_text("{}")
    found = find_class_maps(str(tmp_path))
    assert found == [("1", str(tmp_path / "1_mask.tif")), ("2", str(tmp_path / "2_MASK.PNG"))]
    assert find_class_maps(str(tmp_path / "1_mask.png")) == [("1", str(tmp_path / "1_mask.png"))]
