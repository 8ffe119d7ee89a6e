"""Beam job: labeled scenes → class-id patches → a new dataset version (shards, errors/, manifest).

```
{input}/*  (*_sat.jpg|tif + *_mask.png|tif, suffixes in any case)
  └ MatchAll ─ PairScenes ─┬ pairs ─ ScenesToPatches ─┬ train ── WriteCountedTFRecords ─┐
                           │   (split plan side input) ├ val ──── WriteCountedTFRecords ─┤
                           └ orphans ─────────────────┼ errors ─ WriteToText ─────────────┤
                                                      └ stats ── totals ──────────────────┤
                                                                          WriteManifest ──┘
then, outside Beam: versions.publish(ROOT) switches ROOT/CURRENT to the new version
```

Where each part lives: the split rule in :mod:`pipelines.core.splits`, pairing files into scenes
in :mod:`pipelines.preprocess.pairing`, one scene's work in :mod:`pipelines.preprocess.scenes`,
the Beam steps in :mod:`pipelines.preprocess.transforms`, the manifest type in
:mod:`pipelines.core.manifest`. This module composes them and runs the job.

Why it is shaped like this:

- **Shards are left to the runner by default** (``--num-shards auto``): a fixed shard count makes
  Beam's sink shuffle every patch through a GroupByKey, which the in-process DirectRunner holds
  in memory. A split that gets no scenes still gets one empty shard, so readers find a shard set.
- **Bad input is data**: orphans and bad scenes become ``ErrorRecord`` lines under ``errors/``;
  the job goes on, and ``manifest.json`` counts them (scenes in = scenes written + errors).
- **The manifest is written by the pipeline's last step**, which takes the finalized shards'
  record counts, sizes and sha256 (counted while each shard's bytes are written, by
  :mod:`pipelines.io.shards`; nothing is read back) as side inputs: it appears only once
  every shard is in place, on any runner, and it refuses to vouch for shards whose counts do
  not add up to the patches written.
- **Written whole, then switched**: ``--output`` is a dataset root; a run writes
  ``ROOT/versions/<version_id>/`` and only after its manifest is written does
  :func:`pipelines.io.versions.publish` switch ``ROOT/CURRENT`` to it, in one atomic write.
  Nothing of the previous dataset is deleted, so a run killed at any point leaves the old
  dataset current (or the new one, once published), never neither. Readers resolve the root
  (:func:`pipelines.io.records.resolve_dataset`); old versions are removed by
  :func:`pipelines.io.versions.prune`, never by a run.

Python API (what the Prefect flows call): :func:`run_preprocess`. CLI: ``landcover preprocess``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import overload

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.pvalue import AsList, AsSingleton

from pipelines.core.errors import ERRORS_DIR, ErrorRecord
from pipelines.core.gsd import format_gsd
from pipelines.core.manifest import Manifest, ShardInfo
from pipelines.core.naming import LABEL_MASK_SUFFIXES, LABELED_IMAGE_SUFFIXES
from pipelines.core.quiet import quiet_harmless
from pipelines.core.records import SPLITS, RecordFormat
from pipelines.io import storage, versions
from pipelines.io.beam_runtime import create_pipeline, pipeline_options
from pipelines.io.records import read_manifest, write_manifest
from pipelines.io.shards import WriteCountedTFRecords
from pipelines.preprocess.options import PreprocessOptions
from pipelines.preprocess.pairing import IMAGE, file_role
from pipelines.preprocess.resolution import GsdPlan, survey_gsd
from pipelines.preprocess.transforms import (
    BEAM_COMPRESSION,
    ERRORS,
    STATS,
    TRAIN,
    VAL,
    PairScenes,
    ScenesToPatches,
    SumStatsFn,
    Totals,
)


def build_manifest(
    options: PreprocessOptions,
    totals: Totals,
    errors: int,
    files: dict[str, list[str]],
    runner: str,
    created_at: str | None = None,
    shards: dict[str, ShardInfo] | None = None,
    gsd_plan: GsdPlan | None = None,
) -> Manifest:
    """The run's :class:`Manifest` from the combined totals (pure, so tests and the pipeline
    agree on it); ``files`` are the written shard and error file URIs by split/``errors``,
    ``shards`` what each shard holds as counted after the write, ``gsd_plan`` the GSD the
    patches were cut at (:mod:`pipelines.preprocess.resolution`)."""
    natives: dict[str, int] = {}
    for split in SPLITS:
        for key, count in totals[split].get("native_gsd", {}).items():
            natives[key] = natives.get(key, 0) + count
    plan = gsd_plan or GsdPlan(options.gsd, options.target_gsd, options.gsd)
    return Manifest.build(
        patch_size=options.patch_size,
        record_format=options.record_format,
        # Which scenes were written to which split: evaluation of a trained model reads the val
        # scenes from here, so it never re-derives a split that bad input may have changed.
        scene_ids={s: totals[s].get("scene_ids", []) for s in SPLITS},
        patches={s: totals[s]["patches"] for s in SPLITS},
        # Over scene pixels, each pixel once: overlapping edge patches are not counted twice.
        class_pixels_by_split={s: totals[s]["class_pixels"] for s in SPLITS},
        errors=errors,
        files=files,
        shards=shards,
        options={**options.to_dict(), "runner": runner},
        created_at=created_at,
        gsd=plan.dataset_gsd(natives),
    )


def _write_manifest(
    _: None,
    options: PreprocessOptions,
    runner: str,
    folder_uri: str,
    totals: Totals,
    errors: int,
    train_shards: list[tuple[str, ShardInfo]],
    val_shards: list[tuple[str, ShardInfo]],
    error_files: list[str],
    gsd_plan: GsdPlan | None = None,
) -> Manifest:
    files = {
        TRAIN: [uri for uri, _ in train_shards],
        VAL: [uri for uri, _ in val_shards],
        ERRORS: error_files,
    }
    shards = dict(train_shards + val_shards)
    manifest = build_manifest(
        options, totals, errors, files, runner, shards=shards, gsd_plan=gsd_plan
    )
    write_manifest(folder_uri, manifest)
    return manifest


class Preprocess(beam.PTransform):
    """The whole job from the input root to the manifest written in ``folder_uri`` (a
    PCollection of one :class:`Manifest`). ``folder_uri`` is the version folder the run fills;
    it defaults to the output URI itself (a plain folder, as tests and tools use it).
    ``gsd_plan`` is the run's GSD survey (:func:`plan_gsd`); without one it is surveyed here,
    while the pipeline is built."""

    def __init__(
        self,
        options: PreprocessOptions,
        runner: str = "DirectRunner",
        folder_uri: str | None = None,
        gsd_plan: GsdPlan | None = None,
        total: int = 0,
    ) -> None:
        super().__init__()
        self.options = options
        self.runner = runner
        self.folder_uri = folder_uri or options.output_uri
        self.gsd_plan = gsd_plan
        self.total = total  # labeled images listed, for progress lines (0: unknown)

    def expand(self, root: beam.pvalue.PBegin) -> beam.PCollection[Manifest]:
        opts = self.options
        fmt = opts.record_format
        folder = self.folder_uri
        gsd_plan = self.gsd_plan or plan_gsd(opts)
        uris = (
            root
            | "Patterns" >> beam.Create(input_patterns(opts.input_uri))
            | "Match" >> fileio.MatchAll()
            | "Uris" >> beam.Map(lambda meta: meta.path)
        )
        paired = uris | "PairScenes" >> PairScenes()
        scenes = paired["pairs"] | "ScenesToPatches" >> ScenesToPatches(
            opts.patch_size,
            opts.val_fraction,
            opts.seed,
            fmt,
            opts.mask_rule,
            gsd_plan,
            total=self.total,
        )
        counted = {
            split: scenes[split]
            | f"Write{split.title()}"
            # Each shard's records, size and sha256 counted as its bytes are written.
            >> WriteCountedTFRecords(
                storage.join(folder, split),
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
                storage.join(folder, ERRORS_DIR, "errors"), file_name_suffix=".jsonl"
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
                folder,
                AsSingleton(totals),
                AsSingleton(error_count),
                AsList(counted[TRAIN]),
                AsList(counted[VAL]),
                AsList(error_files),
                gsd_plan,
            )
        )


# ---- driver ------------------------------------------------------------------------------------


def input_patterns(input_uri: str) -> list[str]:
    """The globs of the files a run lists: every file of the input folder. Which of them are
    images and masks is decided by ``core.naming`` (suffixes in any case), not by a
    case-sensitive glob."""
    return [storage.join(storage.literal(input_uri), "*")]


def check_input(input_uri: str) -> None:
    """Fail before starting Beam when the input root is wrong or holds no scene files."""
    storage.check_readable_root(input_uri)
    if not any(file_role(uri) for p in input_patterns(input_uri) for uri in storage.match(p)):
        raise FileNotFoundError(
            f"no scenes under {input_uri}: expected {{id}}{'|'.join(LABELED_IMAGE_SUFFIXES)} "
            f"and {{id}}{'|'.join(LABEL_MASK_SUFFIXES)}"
        )


def count_images(input_uri: str) -> int:
    """Labeled images the run will see (the progress lines' total; orphans included)."""
    uris = (uri for pattern in input_patterns(input_uri) for uri in storage.match(pattern))
    return sum(1 for uri in uris if (role := file_role(uri)) is not None and role[1][0] == IMAGE)


def plan_gsd(options: PreprocessOptions) -> GsdPlan:
    """The run's GSD plan, surveyed from the input's files before any work (a mixed input
    without ``--target-gsd`` raises ``MixedGsdError``, a ValueError naming the GSDs)."""
    uris = [uri for pattern in input_patterns(options.input_uri) for uri in storage.match(pattern)]
    return survey_gsd(uris, options.gsd, options.target_gsd)


def _runner_name(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else "DirectRunner"


@overload
def run_preprocess(
    input_uri: PreprocessOptions, /, *, beam_args: Sequence[str] = ()
) -> Manifest: ...


@overload
def run_preprocess(
    input_uri: str,
    output_uri: str,
    *,
    patch_size: int | None = None,
    val_fraction: float | None = None,
    seed: int | None = None,
    record_format: RecordFormat | None = None,
    beam_args: Sequence[str] = (),
    num_shards: int | None = None,
) -> Manifest: ...


def run_preprocess(
    input_uri: str | PreprocessOptions,
    output_uri: str | None = None,
    *,
    patch_size: int | None = None,
    val_fraction: float | None = None,
    seed: int | None = None,
    record_format: RecordFormat | None = None,
    beam_args: Sequence[str] = (),
    num_shards: int | None = None,
) -> Manifest:
    """Run the job to completion and return the manifest it wrote.

    Call it with a :class:`PreprocessOptions` (``run_preprocess(options, beam_args=...)``), or,
    as before, with the two URIs and keyword options; an option left out (None) takes
    :class:`PreprocessOptions`' default. Raises FileNotFoundError (before Beam starts) for a
    wrong input root or one without scenes, ValueError for invalid options and
    ``MixedGsdError`` (a ValueError) for scenes of several GSDs without a target, both before
    any work. ``beam_args`` are
    Beam flags (``--runner``, ``--project``, ``--direct_num_workers``…).
    """
    options = _options_of(
        input_uri,
        output_uri,
        patch_size=patch_size,
        val_fraction=val_fraction,
        seed=seed,
        record_format=record_format,
        num_shards=num_shards,
    )
    quiet_harmless()
    check_input(options.input_uri)
    gsd_plan = plan_gsd(options)  # before any work: a mixed input is refused here
    total = count_images(options.input_uri)
    version_id, folder = versions.new_version(options.output_uri)
    beam_options = pipeline_options(beam_args)
    with create_pipeline(beam_options) as pipeline:
        _ = pipeline | "Preprocess" >> Preprocess(
            options, _runner_name(beam_options), folder, gsd_plan, total
        )
    # The switch: only now does the root resolve to the new dataset (manifest.json required).
    versions.publish(options.output_uri, version_id)
    return read_manifest(folder)


def _options_of(
    input_uri: str | PreprocessOptions, output_uri: str | None, **overrides: object
) -> PreprocessOptions:
    """The validated options of a call, URIs without a trailing slash."""
    given = {name: value for name, value in overrides.items() if value is not None}
    if isinstance(input_uri, PreprocessOptions):
        if output_uri is not None or given:
            raise TypeError("pass either a PreprocessOptions or URIs and options, not both")
        options = input_uri
    else:
        if output_uri is None:
            raise TypeError("run_preprocess needs an output_uri beside the input_uri")
        options = PreprocessOptions(input_uri, output_uri, **given)  # type: ignore[arg-type]
    return dataclasses.replace(
        options,
        input_uri=options.input_uri.rstrip("/"),
        output_uri=options.output_uri.rstrip("/"),
    ).validate()


def summary(manifest: Manifest, output_uri: str, seconds: float) -> str:
    """The one line ``landcover preprocess`` prints when a run is done."""
    return (
        f"preprocess: {manifest.scene_count(TRAIN)} train + {manifest.scene_count(VAL)} val "
        f"scenes → {manifest.patch_count(TRAIN)} + {manifest.patch_count(VAL)} patches of "
        f"{manifest.patch_size}px{_at_gsd(manifest)}, {manifest.errors} errors "
        f"(see {storage.join(output_uri, ERRORS_DIR)}), written to {output_uri} in {seconds:.1f}s"
    )


def _at_gsd(manifest: Manifest) -> str:
    if manifest.gsd is None:
        return ""
    resampled = " (resampled)" if manifest.gsd.target is not None else ""
    return f" at {format_gsd(manifest.gsd.metres)} m/px{resampled}"
