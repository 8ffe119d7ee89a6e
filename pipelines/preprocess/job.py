"""Beam job: DeepGlobe scenes → class-id patches → sharded TFRecords + manifest + errors/.

```
{input}/*_sat.jpg, *_mask.png
  └ MatchAll ─ PairScenes ─┬ pairs ─ ScenesToPatches ─┬ train ── WriteToTFRecord ─┐
                           │   (split plan side input) ├ val ──── WriteToTFRecord ─┤
                           └ orphans ─────────────────┼ errors ─ WriteToText ─────┤
                                                      └ stats ── totals ──────────┴ WriteManifest
```

Why it is shaped like this:

- **One DoFn does the per-scene work** (read, decode, classes, cut, encode) so each scene is
  decoded once and its 16 patches never cross a fusion boundary as decoded arrays; what leaves
  the DoFn is already the serialized record the sink writes. Decode dominates, so the whole job
  costs little more than decoding (``landcover bench preprocess`` measures the ratio).
- **Shards are left to the runner by default** (``--num-shards auto``): a fixed shard count makes
  Beam's sink shuffle every patch through a GroupByKey, which the in-process DirectRunner holds
  in memory. A split that gets no scenes still gets one empty shard, so readers find a shard set.
- **The split is by scene, from a hash of (seed, scene id)**: sha256 → a number in [0, 1);
  ``< val_fraction`` means val. It never uses Python's ``hash()`` (salted per process) and does
  not depend on file order or workers, so a scene always lands in the same split for a seed.
  Small datasets: when 0 < val_fraction < 1 and that rule gives no val scene among ≥ 2 paired
  scenes, the scene with the lowest score goes to val; when it gives no train scene, the one with
  the highest score goes to train (so a single scene always trains). That fallback looks at the
  paired ids only (before decoding), so it stays a pure function of the ids and the seed.
- **Bad input is data**: an orphan file or a scene that fails to decode, has an image/mask size
  mismatch or is smaller than one patch becomes one ``ErrorRecord`` line under ``errors/``; the
  job goes on, and ``manifest.json`` counts it (scenes in = scenes written + errors).
- **Edge rule** (:mod:`pipelines.core.tiling`): a side that is not a multiple of the patch size
  gets one extra patch shifted inward, flush with the edge; nothing is padded or dropped.
  ``class_pixels`` in the manifest counts every *scene* pixel once (the overlap of those edge
  patches is not counted twice), so it equals a decode of the masks themselves.
- **The manifest is written by the pipeline's last step**, which takes the finalized shard
  names as side inputs: it appears only once every shard is in place, on any runner.

Python API (what the Prefect flows call): :func:`run_preprocess`. CLI: ``landcover preprocess``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.pvalue import AsList, AsSingleton, TaggedOutput

from pipelines.core.errors import ERRORS_DIR, BadInputError, ErrorRecord
from pipelines.core.naming import (
    LABELED_IMAGE_SUFFIX,
    MASK_SUFFIX,
    basename,
    labeled_image_id_of,
    mask_id_of,
)
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.core.records import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    SPLITS,
    RecordFormat,
)
from pipelines.core.tiling import PATCH_SIZE, patch_grid
from pipelines.io import storage
from pipelines.io.beam_runtime import create_pipeline, pipeline_options
from pipelines.io.imaging import decode_image_bytes, decode_mask_bytes
from pipelines.io.records import encode_patch
from pipelines.preprocess.options import DEFAULT_FORMAT, PreprocessOptions

STAGE = "preprocess"
IMAGE, MASK = "image", "mask"
TRAIN, VAL = SPLITS
ERRORS, STATS = "errors", "stats"
METRICS_NAMESPACE = "landcover.preprocess"
BEAM_COMPRESSION = {
    "none": CompressionTypes.UNCOMPRESSED,
    "gzip": CompressionTypes.GZIP,
    # tf.data's "ZLIB" is a zlib-wrapped deflate stream, which is what Beam calls DEFLATE.
    "zlib": CompressionTypes.DEFLATE,
}


# ---- values flowing through the pipeline -------------------------------------------------------


@dataclass(frozen=True)
class ScenePair:
    """A scene whose image and mask were both found."""

    scene_id: str
    image_uri: str
    mask_uri: str


@dataclass(frozen=True)
class SceneStats:
    """What one written scene adds to the manifest."""

    split: str
    patches: int
    class_pixels: tuple[int, ...]  # palette order, over the scene's pixels (each pixel once)
    scene_id: str


@dataclass(frozen=True)
class SplitPlan:
    """The little the split rule needs to know about the whole dataset (see the module doc)."""

    seed: int
    val_fraction: float
    scenes: int = 0
    hashed_val: int = 0  # scenes whose score alone puts them in val
    lowest: str = ""  # id with the lowest score: val of last resort
    highest: str = ""  # id with the highest score: train of last resort


# ---- pure functions ------------------------------------------------------------------------------


def file_role(uri: str) -> tuple[str, tuple[str, str]] | None:
    """``…/{id}_sat.jpg`` → ``(id, ("image", uri))``; masks alike; anything else → None."""
    if (scene_id := labeled_image_id_of(uri)) is not None:
        return scene_id, (IMAGE, uri)
    if (scene_id := mask_id_of(uri)) is not None:
        return scene_id, (MASK, uri)
    return None


def pair_files(scene_id: str, files: Iterable[tuple[str, str]]) -> ScenePair | ErrorRecord:
    """One scene's files (grouped by id) → a pair, or an error naming the lone file."""
    by_role = dict(files)
    if IMAGE in by_role and MASK in by_role:
        return ScenePair(scene_id, by_role[IMAGE], by_role[MASK])
    if IMAGE in by_role:
        return ErrorRecord(by_role[IMAGE], "image without mask", STAGE, scene_id)
    return ErrorRecord(by_role[MASK], "mask without image", STAGE, scene_id)


def split_score(scene_id: str, seed: int) -> float:
    """A stable number in [0, 1) per (seed, scene id): sha256, never the salted ``hash()``."""
    digest = hashlib.sha256(f"{seed}:{scene_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_split(scene_id: str, plan: SplitPlan) -> str:
    """train or val for a scene: the hash rule plus the small-dataset fallback (module doc)."""
    hashed = VAL if split_score(scene_id, plan.seed) < plan.val_fraction else TRAIN
    if 0.0 < plan.val_fraction < 1.0:
        if plan.hashed_val == 0 and plan.scenes >= 2 and scene_id == plan.lowest:
            return VAL
        if plan.hashed_val == plan.scenes and scene_id == plan.highest:
            return TRAIN
    return hashed


def read_labeled_scene(image_uri: str, mask_uri: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and decode an image/mask pair: (image (H, W, 3) uint8, class ids (H, W) uint8).

    What makes a pair usable at all (both decode, same size); the imagery-drop flow checks
    drops with it too. Raises BadInputError naming the file at fault.
    """
    image = decode_image_bytes(storage.read_bytes(image_uri), image_uri)
    class_ids = decode_mask_bytes(storage.read_bytes(mask_uri), mask_uri)
    if image.shape[:2] != class_ids.shape:
        (ih, iw), (mh, mw) = image.shape[:2], class_ids.shape
        raise BadInputError(mask_uri, f"mask is {mh}x{mw} but its image {image_uri} is {ih}x{iw}")
    return image, class_ids


def load_scene(pair: ScenePair, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_labeled_scene`, plus the patch-size check this job needs.

    Raises BadInputError naming the file at fault (undecodable, size mismatch, too small).
    """
    image, class_ids = read_labeled_scene(pair.image_uri, pair.mask_uri)
    height, width = class_ids.shape
    if min(height, width) < patch_size:
        raise BadInputError(
            pair.image_uri, f"scene is {height}x{width}, smaller than the patch size {patch_size}"
        )
    return image, class_ids


def scene_records(
    scene_id: str,
    image: np.ndarray,
    class_ids: np.ndarray,
    patch_size: int,
    fmt: RecordFormat,
) -> Iterator[bytes]:
    """Serialized patches of one decoded scene, row-major over the tiling grid."""
    height, width = class_ids.shape
    for y, x in patch_grid(height, width, patch_size):
        window = (slice(y, y + patch_size), slice(x, x + patch_size))
        yield encode_patch(scene_id, y, x, image[window], class_ids[window], fmt)


def class_pixels(class_ids: np.ndarray) -> tuple[int, ...]:
    """Pixels per class, palette order.

    Seven ``count_nonzero(ids == k)`` passes over uint8 take ~2 ms a scene where ``bincount``
    (which first widens every pixel to int64) takes ~12; ids come from the palette decode, so
    every pixel is one of the seven.
    """
    return tuple(int(np.count_nonzero(class_ids == k)) for k in range(NUM_CLASSES))


# ---- combiners -----------------------------------------------------------------------------------


class SplitPlanFn(beam.CombineFn):
    """Scene ids → :class:`SplitPlan`: counts and the extreme scores the fallback needs."""

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


def _empty_totals() -> dict[str, dict[str, Any]]:
    return {
        split: {"scenes": 0, "patches": 0, "class_pixels": [0] * NUM_CLASSES, "scene_ids": []}
        for split in SPLITS
    }


class SumStatsFn(beam.CombineFn):
    """Per-scene :class:`SceneStats` → per-split totals (scenes, patches, class pixels)."""

    def create_accumulator(self) -> dict[str, dict[str, Any]]:
        return _empty_totals()

    def add_input(self, acc: dict[str, dict[str, Any]], stats: SceneStats) -> Any:
        total = acc[stats.split]
        total["scenes"] += 1
        total["scene_ids"].append(stats.scene_id)
        total["patches"] += stats.patches
        total["class_pixels"] = [
            a + b for a, b in zip(total["class_pixels"], stats.class_pixels, strict=True)
        ]
        return acc

    def merge_accumulators(self, accumulators: Iterable[dict[str, dict[str, Any]]]) -> Any:
        result = _empty_totals()
        for acc in accumulators:
            for split in SPLITS:
                for key in ("scenes", "patches", "scene_ids"):
                    result[split][key] += acc[split][key]
                result[split]["class_pixels"] = [
                    a + b
                    for a, b in zip(
                        result[split]["class_pixels"], acc[split]["class_pixels"], strict=True
                    )
                ]
        return result

    def extract_output(self, acc: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return acc


# ---- DoFns and composite transforms -------------------------------------------------------------


class ProcessSceneFn(beam.DoFn):
    """A scene pair → its serialized patches on the ``train``/``val`` output, plus one
    :class:`SceneStats` (``stats``), or one :class:`ErrorRecord` (``errors``)."""

    def __init__(self, patch_size: int, fmt: RecordFormat) -> None:
        self.patch_size = patch_size
        self.fmt = fmt
        self.scenes_ok = Metrics.counter(METRICS_NAMESPACE, "scenes_ok")
        self.scenes_bad = Metrics.counter(METRICS_NAMESPACE, "scenes_bad")
        self.patches = Metrics.counter(METRICS_NAMESPACE, "patches")

    def process(self, pair: ScenePair, plan: SplitPlan) -> Iterator[TaggedOutput]:
        try:
            image, class_ids = load_scene(pair, self.patch_size)
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
        yield TaggedOutput(STATS, SceneStats(split, count, class_pixels(class_ids), pair.scene_id))


class PairScenes(beam.PTransform):
    """File URIs → ``{"pairs": ScenePair…, "errors": ErrorRecord…}`` (orphans are errors).

    Files that are neither ``*_sat.jpg`` nor ``*_mask.png`` are ignored.
    """

    def expand(self, uris: beam.PCollection[str]) -> dict[str, beam.PCollection]:
        paired = (
            uris
            | "Role" >> beam.FlatMap(_keyed_by_scene)
            | "ById" >> beam.GroupByKey()
            | "Pair" >> beam.MapTuple(pair_files)
        )
        routed = paired | "Sort" >> beam.FlatMap(_route_orphans).with_outputs(ERRORS, main="pairs")
        return {"pairs": routed["pairs"], ERRORS: routed[ERRORS]}


def _route_orphans(item: ScenePair | ErrorRecord) -> Iterator[ScenePair | TaggedOutput]:
    if isinstance(item, ErrorRecord):
        Metrics.counter(METRICS_NAMESPACE, "orphan_files").inc()
        yield TaggedOutput(ERRORS, item)
    else:
        yield item


def _keyed_by_scene(uri: str) -> list[tuple[str, tuple[str, str]]]:
    role = file_role(uri)
    return [role] if role else []


class ScenesToPatches(beam.PTransform):
    """Scene pairs → ``{"train", "val": serialized patches, "errors", "stats"}``."""

    def __init__(self, patch_size: int, val_fraction: float, seed: int, fmt: RecordFormat):
        super().__init__()
        self.patch_size = patch_size
        self.val_fraction = val_fraction
        self.seed = seed
        self.fmt = fmt

    def expand(self, pairs: beam.PCollection[ScenePair]) -> dict[str, beam.PCollection]:
        plan = (
            pairs
            | "Ids" >> beam.Map(lambda pair: pair.scene_id)
            | "SplitPlan" >> beam.CombineGlobally(SplitPlanFn(self.seed, self.val_fraction))
        )
        outputs = pairs | "Scenes" >> beam.ParDo(
            ProcessSceneFn(self.patch_size, self.fmt), AsSingleton(plan)
        ).with_outputs(TRAIN, VAL, ERRORS, STATS)
        return {tag: outputs[tag] for tag in (TRAIN, VAL, ERRORS, STATS)}


def build_manifest(
    options: PreprocessOptions,
    totals: dict[str, dict[str, Any]],
    errors: int,
    files: dict[str, list[str]],
    runner: str,
) -> dict[str, Any]:
    """The ``manifest.json`` dict (pure, so tests and the pipeline agree on its shape)."""

    def named(counts: Sequence[int]) -> dict[str, int]:
        return {name: int(n) for name, n in zip(CLASS_NAMES, counts, strict=True)}

    overall = [sum(totals[s]["class_pixels"][c] for s in SPLITS) for c in range(NUM_CLASSES)]
    return {
        "schema_version": SCHEMA_VERSION,
        "patch_size": options.patch_size,
        "scenes": {s: totals[s]["scenes"] for s in SPLITS},
        "patches": {s: totals[s]["patches"] for s in SPLITS},
        # Which scenes were written to which split: evaluation of a trained model reads the val
        # scenes from here, so it never re-derives a split that bad input may have changed.
        "scene_ids": {s: sorted(totals[s].get("scene_ids", [])) for s in SPLITS},
        # Over scene pixels, each pixel once: overlapping edge patches are not counted twice.
        "class_pixels": named(overall),
        "class_pixels_by_split": {s: named(totals[s]["class_pixels"]) for s in SPLITS},
        "errors": int(errors),
        "record_format": options.record_format.to_dict(),
        "files": {key: sorted(basename(f) for f in uris) for key, uris in files.items()},
        "options": {**options.to_dict(), "runner": runner},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _write_manifest(
    _: None,
    options: PreprocessOptions,
    runner: str,
    totals: dict[str, dict[str, Any]],
    errors: int,
    train_files: list[str],
    val_files: list[str],
    error_files: list[str],
) -> dict[str, Any]:
    files = {TRAIN: train_files, VAL: val_files, ERRORS: error_files}
    manifest = build_manifest(options, totals, errors, files, runner)
    storage.write_text(
        storage.join(options.output_uri, MANIFEST_NAME), json.dumps(manifest, indent=2) + "\n"
    )
    return manifest


class Preprocess(beam.PTransform):
    """The whole job from the input root to the written manifest (a PCollection of one dict)."""

    def __init__(self, options: PreprocessOptions, runner: str = "DirectRunner") -> None:
        super().__init__()
        self.options = options
        self.runner = runner

    def expand(self, root: beam.pvalue.PBegin) -> beam.PCollection[dict[str, Any]]:
        opts = self.options
        fmt = opts.record_format
        uris = (
            root
            | "Patterns" >> beam.Create(input_patterns(opts.input_uri))
            | "Match" >> fileio.MatchAll()
            | "Uris" >> beam.Map(lambda meta: meta.path)
        )
        paired = uris | "PairScenes" >> PairScenes()
        scenes = paired["pairs"] | "ScenesToPatches" >> ScenesToPatches(
            opts.patch_size, opts.val_fraction, opts.seed, fmt
        )
        written = {
            split: scenes[split]
            | f"Write{split.title()}"
            >> beam.io.WriteToTFRecord(
                storage.join(opts.output_uri, split),
                file_name_suffix=fmt.suffix,
                num_shards=opts.num_shards,
                compression_type=BEAM_COMPRESSION[fmt.compression],
            )
            for split in SPLITS
        }
        errors = (paired[ERRORS], scenes[ERRORS]) | "AllErrors" >> beam.Flatten()
        error_files = (
            errors
            | "ErrorJson" >> beam.Map(ErrorRecord.to_json)
            | "WriteErrors"
            >> beam.io.WriteToText(
                storage.join(opts.output_uri, ERRORS_DIR, "errors"), file_name_suffix=".jsonl"
            )
        )
        error_count = errors | "CountErrors" >> beam.combiners.Count.Globally()
        totals = scenes[STATS] | "Totals" >> beam.CombineGlobally(SumStatsFn())
        return (
            root
            | "Once" >> beam.Create([None])
            | "WriteManifest"
            >> beam.Map(
                _write_manifest,
                opts,
                self.runner,
                AsSingleton(totals),
                AsSingleton(error_count),
                AsList(written[TRAIN]),
                AsList(written[VAL]),
                AsList(error_files),
            )
        )


# ---- driver ------------------------------------------------------------------------------------


def input_patterns(input_uri: str) -> list[str]:
    """The globs of the files a run reads: labeled images and masks (see ``core.naming``)."""
    return [storage.join(input_uri, f"*{s}") for s in (LABELED_IMAGE_SUFFIX, MASK_SUFFIX)]


def check_input(input_uri: str) -> None:
    """Fail before starting Beam when the input root is wrong or holds no scene files."""
    storage.check_readable_root(input_uri)
    if not any(storage.match(p) for p in input_patterns(input_uri)):
        raise FileNotFoundError(
            f"no scenes under {input_uri}: "
            f"expected {{id}}{LABELED_IMAGE_SUFFIX} and {{id}}{MASK_SUFFIX}"
        )


def clear_previous_run(output_uri: str) -> list[str]:
    """Delete a previous run's shards, errors and manifest so none mixes into this one.

    The manifest goes first: a reader never sees a manifest over half-replaced shards.
    """
    stale = [storage.join(output_uri, MANIFEST_NAME)]
    stale = [uri for uri in stale if storage.exists(uri)]
    for pattern in (*(f"{s}-*-of-*" for s in SPLITS), f"{ERRORS_DIR}/errors-*"):
        stale += storage.match(storage.join(output_uri, pattern))
    storage.delete(stale)
    return stale


def _runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else "DirectRunner"


def run_preprocess(
    input_uri: str,
    output_uri: str,
    *,
    patch_size: int = PATCH_SIZE,
    val_fraction: float = 0.1,
    seed: int = 0,
    record_format: RecordFormat = DEFAULT_FORMAT,
    beam_args: Sequence[str] = (),
    num_shards: int = 0,
) -> dict[str, Any]:
    """Run the job to completion and return the manifest it wrote.

    Raises FileNotFoundError (before Beam starts) for a wrong input root or one without scenes,
    ValueError for invalid options. ``beam_args`` are Beam flags (``--runner``, ``--project``,
    ``--direct_num_workers``…); ``num_shards`` 0 lets the runner choose.
    """
    if patch_size <= 0:
        raise ValueError(f"patch size must be positive, got {patch_size}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val fraction must be in [0, 1], got {val_fraction}")
    if num_shards < 0:
        raise ValueError(f"num shards must be >= 0 (0 = auto), got {num_shards}")
    input_uri, output_uri = input_uri.rstrip("/"), output_uri.rstrip("/")
    check_input(input_uri)
    clear_previous_run(output_uri)
    options = PreprocessOptions(
        input_uri, output_uri, patch_size, val_fraction, seed, record_format, num_shards
    )
    beam_options = pipeline_options(beam_args)
    with create_pipeline(beam_options) as pipeline:
        _ = pipeline | "Preprocess" >> Preprocess(options, _runner_name(beam_options))
    return json.loads(storage.read_text(storage.join(output_uri, MANIFEST_NAME)))


def summary(manifest: dict[str, Any], output_uri: str, seconds: float) -> str:
    scenes, patches = manifest["scenes"], manifest["patches"]
    return (
        f"preprocess: {scenes[TRAIN]} train + {scenes[VAL]} val scenes → "
        f"{patches[TRAIN]} + {patches[VAL]} patches of {manifest['patch_size']}px, "
        f"{manifest['errors']} errors (see {storage.join(output_uri, ERRORS_DIR)}), "
        f"written to {output_uri} in {seconds:.1f}s"
    )
