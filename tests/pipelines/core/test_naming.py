"""Scene file naming: one convention for every stage (pipelines/core/naming.py)."""

from __future__ import annotations

from pipelines.core.naming import (
    image_name,
    is_tiff,
    labeled_image_id_of,
    mask_id_of,
    mask_name,
    scene_id_of,
    scene_rank,
)


def test_scene_and_mask_ids_follow_the_deepglobe_names() -> None:
    assert scene_id_of("gs://b/x/123_sat.jpg") == "123"
    assert scene_id_of("/x/a_b_sat.TIF") == "a_b"
    assert scene_id_of("123_mask.png") is None
    assert mask_id_of("/x/123_mask.png") == "123"
    assert mask_id_of("/x/123_sat.jpg") is None
    assert scene_id_of("notes.txt") is None and mask_id_of("notes.txt") is None


def test_labeled_images_and_masks_match_suffixes_in_any_case() -> None:
    assert labeled_image_id_of("gs://b/raw/7_sat.jpg") == "7"
    # Inference accepts PNG scenes; preprocessing pairs JPEG and GeoTIFF images only.
    assert labeled_image_id_of("7_sat.png") is None and scene_id_of("7_sat.png") == "7"
    # One rule for every stage: the suffix in any case, the id as spelled.
    assert labeled_image_id_of("Ab_SAT.JPG") == "Ab" and scene_id_of("Ab_SAT.JPG") == "Ab"
    assert labeled_image_id_of("7_sat.tif") == "7" and labeled_image_id_of("7_Sat.TIFF") == "7"
    assert mask_id_of("7_MASK.PNG") == "7" and mask_id_of("7_mask.tif") == "7"
    assert mask_id_of("7_mask.jpg") is None
    assert labeled_image_id_of("_sat.jpg") is None  # a suffix alone names no scene
    assert is_tiff("a/b_MASK.TIF") and not is_tiff("b_mask.png")


def test_names_round_trip_and_suffix_rank_prefers_jpeg() -> None:
    assert labeled_image_id_of(image_name("42")) == "42"
    assert mask_id_of(mask_name("42")) == "42"
    ranked = sorted(["1_sat.tif", "1_sat.png", "1_sat.jpg"], key=scene_rank)
    assert ranked == ["1_sat.jpg", "1_sat.png", "1_sat.tif"]
