"""The preprocess job's Beam pieces: combiners, the per-scene DoFn, and the composite steps.

- **One DoFn does the per-scene work** (read, decode, classes, cut, encode) so each scene is
  decoded once and its 16 patches never cross a fusion boundary as decoded arrays; what leaves
  the DoFn is already the serialized record the sink writes. Decode dominates, so the whole job
  costs little more than decoding (``landcover bench preprocess`` measures the ratio).
- **Bad input is data**: an orphan file or a scene that fails to decode, has an image/mask size
  mismatch or is smaller than one patch becomes one ``ErrorRecord`` on the ``errors`` output;
  a ``Metrics`` counter counts it, and the job goes on.
- **The split plan is a side input** combined from the paired ids alone (before decoding), so
  the split stays a pure function of the ids and the seed (:mod:`pipelines.core.splits`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsSingleton, TaggedOutput

from pipelines.core.errors import BadInputError, ErrorRecord
from pipelines.core.gsd import native_key
from pipelines.core.palette import NUM_CLASSES, MaskRule
from pipelines.core.progress import Progress
from pipelines.core.records import SPLITS, RecordFormat
from pipelines.core.splits import SplitPlan, assign_split, split_score
from pipelines.preprocess.pairing import STAGE, ScenePair, file_role, name_problem, pair_files
from pipelines.preprocess.resolution import GsdPlan
from pipelines.preprocess.scenes import (
    SceneStats,
    class_pixels,
    load_scene_at_gsd,
    scene_records,
)

TRAIN, VAL = SPLITS
ERRORS, STATS = "errors", "stats"  # output tags beside the split names
METRICS_NAMESPACE = "landcover.preprocess"
BEAM_COMPRESSION = {
    "none": CompressionTypes.UNCOMPRESSED,
    "gzip": CompressionTypes.GZIP,
    # tf.data's "ZLIB" is a zlib-wrapped deflate stream, which is what Beam calls DEFLATE.
    "zlib": CompressionTypes.DEFLATE,
}

# Per-split totals as SumStatsFn accumulates them: scenes, patches, class pixels, scene ids, and
# scenes by the GSD they were read at (``native_gsd``: core.gsd.native_key → count).
Totals = dict[str, dict[str, Any]]


# ---- combiners -----------------------------------------------------------------------------------


class SplitPlanFn(beam.CombineFn):
    """Scene ids → :class:`SplitPlan`: counts and the extreme scores the fallback needs.

    The same plan as :func:`pipelines.core.splits.plan_splits`, computed in pieces: the
    accumulator keeps the extreme (score, id) pairs so partial results merge without rehashing.
    """

    def __init__(self, seed: int, val_fraction: float) -> None:
        self.seed = seed
        self.val_fraction = val_fraction

    def create_accumulator(self) -> tuple[int, int, tuple[float, str], tuple[float, str]]:
        return 0, 0, (2.0, ""), (-1.0, "")

    def add_input(self, acc: Any, scene_id: str) -> Any:
        scenes, hashed_val, lowest, highest = acc
        score = (split_score(scene_id, self.seed), scene_id)
        return (
            scenes + 1,
            hashed_val + (score[0] < self.val_fraction),
            min(lowest, score),
            max(highest, score),
        )

    def merge_accumulators(self, accumulators: Iterable[Any]) -> Any:
        result = self.create_accumulator()
        for scenes, hashed_val, lowest, highest in accumulators:
            result = (
                result[0] + scenes,
                result[1] + hashed_val,
                min(result[2], lowest),
                max(result[3], highest),
            )
        return result

    def extract_output(self, acc: Any) -> SplitPlan:
        scenes, hashed_val, lowest, highest = acc
        return SplitPlan(self.seed, self.val_fraction, scenes, hashed_val, lowest[1], highest[1])


def empty_totals() -> Totals:
    """Totals of no scene (what SumStatsFn starts from, and what a run without scenes writes)."""
    return {
        split: {
            "scenes": 0,
            "patches": 0,
            "class_pixels": [0] * NUM_CLASSES,
            "scene_ids": [],
            "native_gsd": {},
        }
        for split in SPLITS
    }


class SumStatsFn(beam.CombineFn):
    """Per-scene :class:`SceneStats` → per-split totals (scenes, patches, class pixels)."""

    def create_accumulator(self) -> Totals:
        return empty_totals()

    def add_input(self, acc: Totals, stats: SceneStats) -> Any:
        total = acc[stats.split]
        total["scenes"] += 1
        total["scene_ids"].append(stats.scene_id)
        total["patches"] += stats.patches
        if stats.native_gsd:
            total["native_gsd"][stats.native_gsd] = total["native_gsd"].get(stats.native_gsd, 0) + 1
        total["class_pixels"] = [
            a + b for a, b in zip(total["class_pixels"], stats.class_pixels, strict=True)
        ]
        return acc

    def merge_accumulators(self, accumulators: Iterable[Totals]) -> Any:
        result = empty_totals()
        for acc in accumulators:
            for split in SPLITS:
                for key in ("scenes", "patches", "scene_ids"):
                    result[split][key] += acc[split][key]
                for gsd, count in acc[split].get("native_gsd", {}).items():
                    natives = result[split]["native_gsd"]
                    natives[gsd] = natives.get(gsd, 0) + count
                result[split]["class_pixels"] = [
                    a + b
                    for a, b in zip(
                        result[split]["class_pixels"], acc[split]["class_pixels"], strict=True
                    )
                ]
        return result

    def extract_output(self, acc: Totals) -> Totals:
        return acc


# ---- DoFns and composite transforms -------------------------------------------------------------


class ProcessSceneFn(beam.DoFn):
    """A scene pair → its serialized patches on the ``train``/``val`` output, plus one
    :class:`SceneStats` (``stats``), or one :class:`ErrorRecord` (``errors``)."""

    def __init__(
        self,
        patch_size: int,
        fmt: RecordFormat,
        rule: MaskRule | None = None,
        gsd: GsdPlan | None = None,
        total: int = 0,
    ) -> None:
        self.patch_size = patch_size
        self.fmt = fmt
        self.rule = rule or MaskRule()
        self.gsd = gsd or GsdPlan()
        self.total = total
        self._progress: Progress | None = None
        self.scenes_ok = Metrics.counter(METRICS_NAMESPACE, "scenes_ok")
        self.scenes_bad = Metrics.counter(METRICS_NAMESPACE, "scenes_bad")
        self.patches = Metrics.counter(METRICS_NAMESPACE, "patches")

    def setup(self) -> None:
        self._progress = Progress("preprocess", self.total)

    def process(self, pair: ScenePair, plan: SplitPlan) -> Iterator[TaggedOutput]:
        yield from self._scene(pair, plan)
        if self._progress is not None:
            self._progress.advance()

    def _scene(self, pair: ScenePair, plan: SplitPlan) -> Iterator[TaggedOutput]:
        try:
            image, class_ids, native = load_scene_at_gsd(pair, self.patch_size, self.rule, self.gsd)
        except BadInputError as error:
            self.scenes_bad.inc()
            yield TaggedOutput(ERRORS, ErrorRecord.from_error(error, STAGE, pair.scene_id))
            return
        split = assign_split(pair.scene_id, plan)
        count = 0
        for record in scene_records(pair.scene_id, image, class_ids, self.patch_size, self.fmt):
            count += 1
            yield TaggedOutput(split, record)
        self.scenes_ok.inc()
        self.patches.inc(count)
        stats = SceneStats(split, count, class_pixels(class_ids), pair.scene_id, native_key(native))
        yield TaggedOutput(STATS, stats)


class PairScenes(beam.PTransform):
    """File URIs → ``{"pairs": ScenePair…, "errors": ErrorRecord…}``.

    Orphans, duplicates and unsafe names are errors; files that are neither a labeled image nor
    a mask (:mod:`pipelines.core.naming`) are ignored.
    """

    def expand(self, uris: beam.PCollection[str]) -> dict[str, beam.PCollection]:
        roles = uris | "Role" >> beam.FlatMap(_keyed_by_scene).with_outputs(ERRORS, main="roles")
        paired = (
            roles["roles"] | "ById" >> beam.GroupByKey() | "Pair" >> beam.FlatMapTuple(pair_files)
        )
        routed = paired | "Sort" >> beam.FlatMap(_route_orphans).with_outputs(ERRORS, main="pairs")
        errors = (roles[ERRORS], routed[ERRORS]) | "PairErrors" >> beam.Flatten()
        return {"pairs": routed["pairs"], ERRORS: errors}


def _route_orphans(item: ScenePair | ErrorRecord) -> Iterator[ScenePair | TaggedOutput]:
    if isinstance(item, ScenePair):
        yield item
    else:
        Metrics.counter(METRICS_NAMESPACE, "orphan_files").inc()
        yield TaggedOutput(ERRORS, item)


def _keyed_by_scene(uri: str) -> Iterator[tuple[str, tuple[str, str]] | TaggedOutput]:
    role = file_role(uri)
    if role is None:
        return
    problem = name_problem(uri)
    if problem is not None:
        Metrics.counter(METRICS_NAMESPACE, "unsafe_names").inc()
        yield TaggedOutput(ERRORS, ErrorRecord(uri, problem, STAGE, role[0]))
    else:
        yield role


class ScenesToPatches(beam.PTransform):
    """Scene pairs → ``{"train", "val": serialized patches, "errors", "stats"}``."""

    def __init__(
        self,
        patch_size: int,
        val_fraction: float,
        seed: int,
        fmt: RecordFormat,
        rule: MaskRule | None = None,
        gsd: GsdPlan | None = None,
        total: int = 0,
    ):
        super().__init__()
        self.patch_size = patch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.fmt = fmt
        self.rule = rule or MaskRule()
        self.gsd = gsd or GsdPlan()
        self.total = total  # scenes in the run, for progress lines

    def expand(self, pairs: beam.PCollection[ScenePair]) -> dict[str, beam.PCollection]:
        plan = (
            pairs
            | "Ids" >> beam.Map(lambda pair: pair.scene_id)
            | "SplitPlan" >> beam.CombineGlobally(SplitPlanFn(self.seed, self.val_fraction))
        )
        outputs = pairs | "Scenes" >> beam.ParDo(
            ProcessSceneFn(self.patch_size, self.fmt, self.rule, self.gsd, self.total),
            AsSingleton(plan),
        ).with_outputs(TRAIN, VAL, ERRORS, STATS)
        return {tag: outputs[tag] for tag in (TRAIN, VAL, ERRORS, STATS)}
