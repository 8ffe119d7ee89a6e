"""The preprocess Beam steps on inline scenes (TestPipeline + assert_that), and the combiners."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
from apache_beam.testing.util import assert_that, equal_to

from pipelines.core.errors import ErrorRecord
from pipelines.core.records import RecordFormat
from pipelines.core.splits import SplitPlan, assign_split, plan_splits
from pipelines.io.records import decode_patch
from pipelines.preprocess.pairing import ScenePair
from pipelines.preprocess.scenes import SceneStats
from pipelines.preprocess.transforms import (
    PairScenes,
    ScenesToPatches,
    SplitPlanFn,
    SumStatsFn,
)


def _plan(ids: list[str], seed: int, val_fraction: float) -> SplitPlan:
    fn = SplitPlanFn(seed, val_fraction)
    halves = [fn.create_accumulator(), fn.create_accumulator()]
    for k, scene_id in enumerate(ids):  # two accumulators merged, as a runner would
        halves[k % 2] = fn.add_input(halves[k % 2], scene_id)
    return fn.extract_output(fn.merge_accumulators(halves))


def test_split_plan_combiner_agrees_with_the_pure_plan() -> None:
    ids = [f"s{i}" for i in range(37)]
    for seed, fraction in ((0, 0.1), (3, 0.5), (1, 0.0), (2, 1.0), (5, 0.01)):
        assert _plan(ids, seed, fraction) == plan_splits(ids, seed, fraction)
    assert _plan([], 0, 0.5) == SplitPlan(0, 0.5)


def test_sum_stats_merges_partial_totals() -> None:
    fn = SumStatsFn()
    a, b = fn.create_accumulator(), fn.create_accumulator()
    a = fn.add_input(a, SceneStats("train", 4, (1, 0, 0, 0, 0, 0, 3), "x", "0.5"))
    b = fn.add_input(b, SceneStats("val", 2, (0, 2, 0, 0, 0, 0, 0), "y", "0.5"))
    b = fn.add_input(b, SceneStats("train", 1, (0, 0, 1, 0, 0, 0, 0), "z", "0.5"))
    b = fn.add_input(b, SceneStats("train", 1, (0, 0, 1, 0, 0, 0, 0), "w", "0.3"))
    totals = fn.extract_output(fn.merge_accumulators([a, b]))
    assert totals["train"] == {
        "scenes": 3,
        "patches": 6,
        "class_pixels": [1, 0, 2, 0, 0, 0, 3],
        "scene_ids": ["x", "z", "w"],
        "native_gsd": {"0.5": 2, "0.3": 1},
    }
    assert totals["val"] == {
        "scenes": 1,
        "patches": 2,
        "class_pixels": [0, 2, 0, 0, 0, 0, 0],
        "scene_ids": ["y"],
        "native_gsd": {"0.5": 1},
    }


def test_pair_scenes(test_pipeline) -> None:  # type: ignore[no-untyped-def]
    uris = [
        "/in/1_sat.jpg",
        "/in/1_mask.png",
        "/in/2_sat.jpg",
        "/in/3_mask.png",
        "/in/notes.txt",
        "/in/4_mask.png",
        "/in/4_sat.jpg",
    ]
    with test_pipeline() as p:
        out = p | beam.Create(uris) | PairScenes()
        assert_that(
            out["pairs"],
            equal_to(
                [
                    ScenePair("1", "/in/1_sat.jpg", "/in/1_mask.png"),
                    ScenePair("4", "/in/4_sat.jpg", "/in/4_mask.png"),
                ]
            ),
            label="pairs",
        )
        assert_that(
            out["errors"],
            equal_to(
                [
                    ErrorRecord("/in/2_sat.jpg", "image without mask", "preprocess", "2"),
                    ErrorRecord("/in/3_mask.png", "mask without image", "preprocess", "3"),
                ]
            ),
            label="errors",
        )


def test_scenes_to_patches(tmp_path: Path, test_pipeline, scene_files) -> None:  # type: ignore[no-untyped-def]
    tiny_scene, write_scene = scene_files.tiny_scene, scene_files.write_scene
    scenes = {"a": tiny_scene(0, 16, 24), "b": tiny_scene(1, 20, 16), "c": tiny_scene(2, 6, 8)}
    for scene_id, (image, ids) in scenes.items():
        write_scene(tmp_path, scene_id, image, ids)
    (tmp_path / "d_sat.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "d_mask.png").write_bytes(scene_files.png(np.zeros((8, 8, 3), np.uint8)))
    pairs = [
        ScenePair(i, str(tmp_path / f"{i}_sat.jpg"), str(tmp_path / f"{i}_mask.png"))
        for i in "abcd"
    ]
    # Source pixels as the job must see them: the decoded JPEG, and the classes as drawn.
    source = {
        i: (scene_files.rgb((tmp_path / f"{i}_sat.jpg").read_bytes()), scenes[i][1]) for i in "ab"
    }
    plan = _plan(["a", "b", "c", "d"], 0, 0.5)
    split = {i: assign_split(i, plan) for i in "ab"}

    def crops(scene_id: str) -> list[tuple[str, int, int, bytes, bytes]]:
        image, ids = source[scene_id]
        height, width = ids.shape
        ys = sorted({0, height - 8, *range(0, height - 7, 8)})
        xs = sorted({0, width - 8, *range(0, width - 7, 8)})
        return [
            (
                scene_id,
                y,
                x,
                image[y : y + 8, x : x + 8].tobytes(),
                ids[y : y + 8, x : x + 8].tobytes(),
            )
            for y in ys
            for x in xs
        ]

    def as_tuple(serialized: bytes) -> tuple[str, int, int, bytes, bytes]:
        patch = decode_patch(serialized, RecordFormat())
        return (
            patch["scene_id"],
            patch["y"],
            patch["x"],
            patch["image"].tobytes(),
            patch["class_ids"].tobytes(),
        )

    def stats(scene_id: str) -> SceneStats:
        counts = np.bincount(scenes[scene_id][1].ravel(), minlength=7)
        return SceneStats(
            split[scene_id], len(crops(scene_id)), tuple(int(c) for c in counts), scene_id, "0.5"
        )

    with test_pipeline() as p:
        out = p | beam.Create(pairs) | ScenesToPatches(8, 0.5, 0, RecordFormat())
        for name in ("train", "val"):
            expected = [t for i in "ab" if split[i] == name for t in crops(i)]
            assert_that(
                out[name] | f"Decode{name}" >> beam.Map(as_tuple), equal_to(expected), label=name
            )
        assert_that(out["stats"], equal_to([stats("a"), stats("b")]), label="stats")
        assert_that(
            out["errors"]
            | beam.Map(lambda e: (e.scene_id, e.uri.rsplit("/", 1)[-1], e.reason.split(":")[0])),
            equal_to(
                [
                    ("c", "c_sat.jpg", "scene is 6x8, smaller than the patch size 8"),
                    ("d", "d_sat.jpg", "cannot open as a raster"),
                ]
            ),
            label="errors",
        )
    # 16x24 → 2x3 patches; 20x16 → 3x2 (the last row flush with the edge at y=12).
    assert len(crops("a")) == 6 and [c[1] for c in crops("b")][::2] == [0, 8, 12]
