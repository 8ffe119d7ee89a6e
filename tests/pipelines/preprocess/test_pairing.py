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
    assert pairing.file_role("/d/12_sat.png") is None
    assert pairing.file_role("/d/_sat.jpg") is None
    both = [("mask", "/d/1_mask.png"), ("image", "/d/1_sat.jpg")]
    assert pairing.pair_files("1", both) == ScenePair("1", "/d/1_sat.jpg", "/d/1_mask.png")
    lone = pairing.pair_files("2", [("mask", "/d/2_mask.png")])
    assert lone == ErrorRecord("/d/2_mask.png", "mask without image", "preprocess", "2")
    lone_image = pairing.pair_files("3", [("image", "/d/3_sat.jpg")])
    assert lone_image == ErrorRecord("/d/3_sat.jpg", "image without mask", "preprocess", "3")
