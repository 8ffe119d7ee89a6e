"""One scene's work without Beam: load and check, cut into records, count classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.core.errors import BadInputError
from pipelines.core.records import RecordFormat
from pipelines.io.records import decode_patch
from pipelines.preprocess.pairing import ScenePair
from pipelines.preprocess.scenes import class_pixels, load_scene, scene_records


def _pair(folder: Path, scene_id: str) -> ScenePair:
    return ScenePair(
        scene_id, str(folder / f"{scene_id}_sat.jpg"), str(folder / f"{scene_id}_mask.png")
    )


def test_load_scene_checks_the_patch_size(tmp_path: Path, scene_files) -> None:  # type: ignore[no-untyped-def]
    image, ids = scene_files.tiny_scene(0, 12, 10)
    scene_files.write_scene(tmp_path, "s", image, ids)
    loaded_image, loaded_ids = load_scene(_pair(tmp_path, "s"), 10)
    assert loaded_image.shape == (12, 10, 3) and np.array_equal(loaded_ids, ids)
    with pytest.raises(BadInputError, match="scene is 12x10, smaller than the patch size 11"):
        load_scene(_pair(tmp_path, "s"), 11)


@pytest.mark.parametrize("codec", ["raw", "png"])
def test_scene_records_cover_the_scene_with_edge_patches_flush(codec: str, scene_files) -> None:  # type: ignore[no-untyped-def]
    image, ids = scene_files.tiny_scene(3, 20, 16)
    fmt = RecordFormat(codec)  # type: ignore[arg-type]
    patches = [decode_patch(r, fmt) for r in scene_records("s", image, ids, 8, fmt)]
    # 20 rows → y 0, 8, 12 (flush with the edge); 16 columns → x 0, 8: row-major.
    assert [(p["y"], p["x"]) for p in patches] == [(y, x) for y in (0, 8, 12) for x in (0, 8)]
    for p in patches:
        window = (slice(p["y"], p["y"] + 8), slice(p["x"], p["x"] + 8))
        assert p["scene_id"] == "s"
        assert np.array_equal(p["image"], image[window])
        assert np.array_equal(p["class_ids"], ids[window])


def test_class_pixels_count_each_scene_pixel_once(scene_files) -> None:  # type: ignore[no-untyped-def]
    _, ids = scene_files.tiny_scene(4, 20, 16)
    assert class_pixels(ids) == tuple(int(c) for c in np.bincount(ids.ravel(), minlength=7))
    assert sum(class_pixels(ids)) == 20 * 16
