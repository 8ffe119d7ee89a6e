"""Pairing files into scenes: roles by file name, a lone file is an error naming it."""

from __future__ import annotations

from pipelines.core.errors import ErrorRecord
from pipelines.preprocess import pairing
from pipelines.preprocess.pairing import ScenePair


def test_file_roles_and_pairing() -> None:
    assert pairing.file_role("gs://b/raw/12_sat.jpg") == (
        "12",
        ("image", "gs://b/raw/12_sat.jpg"),
    )
    assert pairing.file_role("/d/a_b_mask.png") == ("a_b", ("mask", "/d/a_b_mask.png"))
    # One catalog: every image format inference reads is an image preprocessing pairs.
    assert pairing.file_role("/d/12_sat.png") == ("12", ("image", "/d/12_sat.png"))
    assert pairing.file_role("/d/AB_sat.jpg")[0] == pairing.file_role("/d/ab_mask.tif")[0]  # type: ignore[index]
    assert pairing.file_role("/d/_sat.jpg") is None
    both = [("mask", "/d/1_mask.png"), ("image", "/d/1_sat.jpg")]
    assert pairing.pair_files("1", both) == [ScenePair("1", "/d/1_sat.jpg", "/d/1_mask.png")]
    lone = pairing.pair_files("2", [("mask", "/d/2_mask.png")])
    assert lone == [ErrorRecord("/d/2_mask.png", "mask without image", "preprocess", "2")]
    lone_image = pairing.pair_files("3", [("image", "/d/3_sat.jpg")])
    assert lone_image == [ErrorRecord("/d/3_sat.jpg", "image without mask", "preprocess", "3")]


def test_one_suffix_rule_any_case_geotiff_pairs_and_duplicates() -> None:
    assert pairing.file_role("/d/7_SAT.JPG") == ("7", ("image", "/d/7_SAT.JPG"))
    assert pairing.file_role("/d/7_Mask.TIF") == ("7", ("mask", "/d/7_Mask.TIF"))
    assert pairing.file_role("/d/a b_sat.tiff") == ("a b", ("image", "/d/a b_sat.tiff"))
    # Decomposed and composed accents are one id.
    assert pairing.file_role("/d/e\u0301_sat.jpg")[0] == pairing.file_role("/d/\u00e9_mask.png")[0]
    files = [("image", "/d/1_sat.tif"), ("image", "/d/1_sat.jpg"), ("mask", "/d/1_mask.tif")]
    assert pairing.pair_files("1", files) == [
        ScenePair("1", "/d/1_sat.jpg", "/d/1_mask.tif"),
        ErrorRecord(
            "/d/1_sat.tif", "duplicate image of scene 1; /d/1_sat.jpg was used", "preprocess", "1"
        ),
    ]
    assert pairing.name_problem("/d/..._sat.jpg") is None  # looks odd, is a plain name
    assert pairing.name_problem("/d/a[1]_sat.jpg") is None  # storage takes it literally
    assert "U+0000" in (pairing.name_problem("/d/a\x00_sat.jpg") or "")
