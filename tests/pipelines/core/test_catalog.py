"""The scene catalog: what a scene is, for every stage (pipelines.core.catalog)."""

from __future__ import annotations

from pipelines.core.catalog import (
    GEOREF_NONE,
    GEOREF_RASTER,
    GEOREF_WORLD_FILE,
    build_catalog,
    conflicts_with,
    scene_file,
    scene_key,
)


def test_a_scene_is_an_image_and_a_label_of_one_id_in_any_format() -> None:
    catalog = build_catalog(
        ["/d/a_sat.jpg", "/d/a_mask.tif", "/d/b_sat.TIF", "/d/b_Mask.png", "/d/c_sat.png", "/d/x"]
    )
    assert [(s.scene_id, s.labeled) for s in catalog.scenes] == [
        ("a", True),
        ("b", True),
        ("c", False),
    ]
    a = catalog.get("a")
    assert a is not None and a.image is not None and a.label is not None
    assert (a.image.format, a.label.format, a.label.uri) == ("jpeg", "tiff", "/d/a_mask.tif")
    assert [s.scene_id for s in catalog.labeled] == ["a", "b"]
    assert catalog.problems == ()


def test_ids_compare_up_to_case_and_unicode_form_across_extensions() -> None:
    assert scene_key("E\u0301t\u00e9") == scene_key("\u00c9T\u00c9") == scene_key("\u00e9t\u00e9")
    catalog = build_catalog(
        ["/d/A_sat.jpg", "/d/a_sat.png", "/d/e\u0301_sat.jpg", "/d/\u00e9_mask.png"]
    )
    assert [s.scene_id for s in catalog.scenes] == ["A", "e\u0301"]
    assert catalog.get("\u00c9") is not None and catalog.get("\u00c9").labeled  # type: ignore[union-attr]
    assert [(p.uri, p.reason) for p in catalog.problems] == [
        ("/d/a_sat.png", "duplicate image of scene A; /d/A_sat.jpg was used")
    ]


def test_a_second_label_of_one_scene_is_a_problem_not_a_second_scene() -> None:
    catalog = build_catalog(["/d/a_sat.jpg", "/d/a_mask.tif", "/d/a_mask.png"])
    assert len(catalog.scenes) == 1
    assert catalog.scenes[0].label is not None and catalog.scenes[0].label.uri == "/d/a_mask.png"
    assert [p.uri for p in catalog.problems] == ["/d/a_mask.tif"]
    assert set(catalog.files) == {"/d/a_sat.jpg", "/d/a_mask.tif", "/d/a_mask.png"}


def test_names_with_pattern_characters_are_plain_ids() -> None:
    catalog = build_catalog(
        ["/d/tile[1]_sat.jpg", "/d/tile1_sat.jpg", "/d/a*b_sat.png", "/d/?_sat.tif"]
    )
    assert [s.scene_id for s in catalog.scenes] == ["?", "a*b", "tile1", "tile[1]"]
    assert catalog.problems == ()
    found = scene_file("/d/tile[1]_mask.tif")
    assert found is not None and (found.scene_id, found.role) == ("tile[1]", "label")


def test_georeference_comes_from_the_raster_or_a_world_file_beside_the_image() -> None:
    catalog = build_catalog(
        [
            "/d/w_sat.jpg",
            "/d/w_sat.jgw",
            "/d/p_sat.png",
            "/d/p_sat.wld",
            "/d/n_sat.jpg",
            "/d/t_sat.tif",
        ]
    )
    by_id = {s.scene_id: s for s in catalog.scenes}
    assert by_id["w"].world_file == "/d/w_sat.jgw" and by_id["w"].georeference == GEOREF_WORLD_FILE
    assert by_id["p"].world_file == "/d/p_sat.wld"
    assert by_id["n"].georeference == GEOREF_NONE and by_id["t"].georeference == GEOREF_RASTER
    assert "/d/w_sat.jgw" in catalog.files  # a changed world file changes what is read


def test_conflicts_are_a_second_file_of_a_role_under_another_name() -> None:
    raw = ["a_sat.jpg", "a_mask.tif", "B_sat.jpg"]
    assert conflicts_with(raw, ["a_sat.jpg", "a_mask.png"]) == [
        "a_mask.png would be a second label of scene a, which already has a_mask.tif"
    ]
    assert conflicts_with(raw, ["a_sat.jpg", "a_mask.tif"]) == []  # same names: bytes decide
    assert conflicts_with(raw, ["b_sat.JPG"]) == []  # same name up to case
    assert conflicts_with(raw, ["b_sat.png"]) == [
        "b_sat.png would be a second image of scene B, which already has B_sat.jpg"
    ]
    assert conflicts_with(raw, ["c_sat.jpg", "c_mask.png"]) == []
