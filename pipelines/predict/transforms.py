"""The predict job's Beam steps, and :class:`PredictScenes`, the composite that chains them.

Per scene::

    Scene → PlanScene (checksum, fingerprint, skip if done, retract the old record, split a large
            georeferenced scene into blocks; bad scenes → ``errors``)
          → Reshuffle (blocks of one scene spread over workers)
          → PredictBlock (read by windows, model, streaming stitch; a one-block scene writes its
            outputs and record here, a block of a larger scene writes a block GeoTIFF)
          → GroupByKey(scene) → AssembleScene (blocks → VRT → COG, record; or the scene's error)

Each block runs its own tile grid, planned for the block widened by half the overlap on its
inner sides, and keeps its own pixels (``pipelines.core.tiling.grid_frame``): no tile is run by
two blocks. A block's pixels equal a whole-scene stitch's for a model whose receptive field is
within the blend margin; beside block borders a deeper model's differ by the cut.

A scene at another GSD than the model's is predicted on the model's grid and written back on its
own (``pipelines.predict.regrid``; which GSD: ``pipelines.predict.resolution``); blocks and
outputs stay on the scene's grid.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import apache_beam as beam
import rasterio
from apache_beam.metrics.metric import Metrics
from apache_beam.utils.shared import Shared

from pipelines.core.errors import BadInputError, ErrorRecord
from pipelines.core.geo import OutputTooLargeError, PixelWindow, block_grid, check_output_limits
from pipelines.core.gsd import Gsd
from pipelines.core.palette import NUM_CLASSES
from pipelines.core.progress import Progress
from pipelines.core.provenance import InputRef, ModelRef, output_fingerprint
from pipelines.core.quiet import quiet_harmless
from pipelines.core.tiling import plan_region_tile
from pipelines.io import imaging, storage
from pipelines.io.raster_cog import assemble_cog
from pipelines.io.raster_read import RasterInfo, check_rgb, open_raster, read_info
from pipelines.io.raster_write import class_map_description, write_class_block
from pipelines.io.scenes import Scene, decoded_by_pil
from pipelines.predict import records
from pipelines.predict.answers import finish_scene, scene_tags
from pipelines.predict.handler import FORWARD_US, METRICS_NAMESPACE
from pipelines.predict.options import PredictOptions
from pipelines.predict.outputs import (
    MASK_COG_SUFFIX,
    BlockSink,
    CogSceneSink,
    PngSceneSink,
    output_names,
)
from pipelines.predict.regrid import ModelGrid, predict_on_model_grid
from pipelines.predict.resolution import scene_resolution
from pipelines.predict.streaming import ArraySource, RasterSource, RegionStats, predict_region

STAGE = "predict"  # the stage named in error records and error file names
SCENES_FAILED = "scenes_failed"
SCENES_PREDICTED = "scenes_predicted"
SCENES_SKIPPED = "scenes_skipped"
SCENES_WITHOUT_CRS = "scenes_without_crs"
TILES_RUN = "tiles_run"
TILES_SKIPPED_NODATA = "tiles_skipped_nodata"
NODATA_PIXELS = "nodata_pixels"
MODEL_PIXELS = "model_pixels"
BLOCKS = "blocks"
SCENES_RESAMPLED = "scenes_resampled"
NO_CRS_WARNING = "no CRS: output has no georeference"
BLOCKS_DIR = "_blocks"  # block GeoTIFFs of scenes being assembled (deleted after assembly)
# GDAL's raster block cache defaults to 5% of the machine's RAM (6.4 GB on a 128 GB worker), and
# the windowed writes and the COG copy fill it: bounded here, in the steps that read and write
# rasters, so a worker's peak does not grow with its RAM. Measured on a 23 GB machine: reading an
# 8192² RGB tiled GeoTIFF by windows peaks at 278 MB RSS with the default cache, 87 MB at 64 MB.
GDAL_CACHEMAX_MB = 256


def gdal_env() -> rasterio.Env:
    """The GDAL settings every raster step of predict runs under (a bounded block cache)."""
    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHEMAX_MB)


@dataclass(frozen=True)
class SceneTask:
    """One unit of prediction work: a whole scene, or one block of a block-parallel scene."""

    scene_id: str
    uri: str
    fmt: str
    source: InputRef
    options: dict[str, Any]
    fingerprint: str
    info: RasterInfo | None  # None: a DeepGlobe JPEG/PNG decoded whole by PIL, png output
    block: PixelWindow | None = None
    blocks: int = 1
    scene_gsd: Gsd | None = None  # set when the scene is predicted on the model's grid
    model_gsd: float | None = None
    gsd: dict[str, Any] = field(default_factory=dict)  # the record's facts when not resampled

    def model_grid(self, height: int, width: int) -> ModelGrid | None:
        """The scene's grid at the model's GSD, or None when it is predicted on its own."""
        if self.scene_gsd is None or self.model_gsd is None:
            return None
        return ModelGrid.of(height, width, self.scene_gsd, self.model_gsd)

    def summary(self, stats: RegionStats, shape: tuple[int, int] | None = None) -> dict[str, Any]:
        """The facts the scene's record and the job summary carry (``shape``: the scene's, when
        ``info`` does not say it)."""
        crs = self.info.crs if self.info is not None else None
        warnings = [NO_CRS_WARNING] if self.info is not None and crs is None else []
        return {
            "width": self.info.width if self.info else None,
            "height": self.info.height if self.info else None,
            "crs": crs,
            "warnings": warnings,
            "format": self.fmt,
            "blocks": self.blocks,
            "nodata_pixels": stats.nodata_pixels,
            "tiles_run": stats.tiles_run,
            "tiles_skipped_nodata": stats.tiles_skipped_nodata,
            "model_pixels": stats.model_pixels,
            "tta": self.options["tta"],
            "gsd": self._gsd_facts(shape),
            "seconds": round(stats.seconds, 3),
        }

    def _gsd_facts(self, shape: tuple[int, int] | None) -> dict[str, Any]:
        if shape is None and self.info is not None:
            shape = (self.info.height, self.info.width)
        grid = self.model_grid(*shape) if shape is not None else None
        return grid.describe() if grid is not None else dict(self.gsd)


@dataclass(frozen=True)
class BlockResult:
    """A predicted block on its way to assembly, or the reason its scene fails."""

    task: SceneTask
    uri: str = ""
    stats: RegionStats | None = None
    error: str = ""
    error_uri: str = ""


def _error(uri: str, reason: str, scene_id: str) -> beam.pvalue.TaggedOutput:
    record = ErrorRecord(uri=uri, reason=" ".join(reason.split()), stage=STAGE, scene_id=scene_id)
    return beam.pvalue.TaggedOutput(ERRORS, record.to_json())


ERRORS = "errors"


class PlanScene(beam.DoFn):
    """Scene → its work (one task, or one per block), nothing when done, or an error line."""

    def __init__(
        self,
        output_uri: str,
        options: PredictOptions,
        model: ModelRef,
        model_gsd: float | None = None,
    ) -> None:
        self.output_uri, self.options, self.model = output_uri, options, model
        self.model_gsd = model_gsd
        self.failed = Metrics.counter(METRICS_NAMESPACE, SCENES_FAILED)
        self.skipped = Metrics.counter(METRICS_NAMESPACE, SCENES_SKIPPED)

    def process(self, scene: Scene) -> Iterator[Any]:
        try:
            tasks = self._plan(scene)
        except (BadInputError, OutputTooLargeError) as error:
            self.failed.inc()
            uri = error.uri if isinstance(error, BadInputError) else scene.uri
            reason = error.reason if isinstance(error, BadInputError) else str(error)
            yield _error(uri, reason, scene.scene_id)
            return
        if not tasks:
            self.skipped.inc()
        yield from tasks

    def _plan(self, scene: Scene) -> list[SceneTask]:
        if scene.problem:
            raise BadInputError(scene.uri, scene.problem)
        try:
            source = records.input_ref(scene.uri)
        except FileNotFoundError:
            raise BadInputError(scene.uri, "file vanished before it could be read") from None
        pil = decoded_by_pil(scene.uri)
        # A JPEG/PNG is read for its georeference when it may have one: a world file beside it.
        plain = pil and not scene.world_file and self.options.format != "cog"
        info = None if plain else read_info(scene.uri)
        if info is not None and not pil:
            check_rgb(info)
        fmt = self.options.output_format(info is not None and info.georeferenced)
        if fmt == "png" and pil:
            info = None
        opts = records.prediction_options(self.options.output_options(fmt))
        scene_gsd, gsd_facts = scene_resolution(scene.uri, info, self.options.gsd, self.model_gsd)
        if scene_gsd is not None:  # the resampling changes the output bytes: fingerprinted
            opts["gsd"] = {"scene_m": [scene_gsd.x, scene_gsd.y], "model_m": self.model_gsd}
        fingerprint = output_fingerprint(source, self.model, opts)
        out = self.output_uri
        if not self.options.overwrite and records.scene_is_done(out, scene.scene_id, fingerprint):
            return []
        names = output_names(
            scene.scene_id, fmt, self.options.class_ids, self.options.probabilities
        )
        foreign = (
            [] if self.options.overwrite else records.foreign_outputs(out, scene.scene_id, names)
        )
        if foreign:
            raise BadInputError(
                storage.join(out, foreign[0]),
                f"{', '.join(foreign)} already in the output folder and not written by predict "
                "(no done-record lists it): not replaced; pass --overwrite to replace it",
            )
        records.retract(out, scene.scene_id, names)
        task = SceneTask(
            scene.scene_id,
            scene.uri,
            fmt,
            source,
            opts,
            fingerprint,
            info,
            scene_gsd=scene_gsd,
            model_gsd=self.model_gsd,
            gsd=gsd_facts,
        )
        if fmt != "cog" or info is None:
            return [task]
        check_output_limits(info.width, info.height, NUM_CLASSES)  # before any compute
        block_size = self.options.block_size
        split = (
            not self.options.probabilities
            and block_size > 0
            and max(info.width, info.height) > block_size
        )
        if not split:
            return [task]
        grid = block_grid(info.height, info.width, block_size)
        return [replace(task, block=block, blocks=len(grid)) for block in grid]


def block_uri(output_uri: str, task: SceneTask) -> str:
    """Where a block GeoTIFF waits for assembly: keyed by scene, fingerprint and window."""
    assert task.block is not None
    name = f"r{task.block.row_off:08d}-c{task.block.col_off:08d}.tif"
    return storage.join(output_uri, BLOCKS_DIR, task.scene_id, task.fingerprint[:16], name)


class PredictBlock(beam.DoFn):
    """A task → its prediction: outputs + record for a whole scene, a block GeoTIFF otherwise."""

    BLOCKS = "blocks"

    def __init__(
        self,
        model_file: str,
        output_uri: str,
        options: PredictOptions,
        model: ModelRef,
        progress: tuple[int, int] = (0, 0),
    ) -> None:
        self.model_file, self.output_uri = model_file, output_uri
        self.options, self.model_ref = options, model
        self.progress_start = progress  # (scenes done before this run, scenes in the job)
        self._progress: Progress | None = None
        self._shared = Shared()
        self._model: Any = None
        self._multiple = 1
        self.predicted = Metrics.counter(METRICS_NAMESPACE, SCENES_PREDICTED)
        self.failed = Metrics.counter(METRICS_NAMESPACE, SCENES_FAILED)
        self.forward_us = Metrics.counter(METRICS_NAMESPACE, FORWARD_US)
        self.tiles_run = Metrics.counter(METRICS_NAMESPACE, TILES_RUN)
        self.tiles_skipped = Metrics.counter(METRICS_NAMESPACE, TILES_SKIPPED_NODATA)
        self.nodata = Metrics.counter(METRICS_NAMESPACE, NODATA_PIXELS)
        self.model_pixels = Metrics.counter(METRICS_NAMESPACE, MODEL_PIXELS)
        self.no_crs = Metrics.counter(METRICS_NAMESPACE, SCENES_WITHOUT_CRS)
        self.blocks = Metrics.counter(METRICS_NAMESPACE, BLOCKS)
        self.resampled = Metrics.counter(METRICS_NAMESPACE, SCENES_RESAMPLED)

    def setup(self) -> None:
        from models import serving  # TensorFlow: only in the worker that runs the model

        quiet_harmless()  # on a remote worker too: the sinks' harmless warnings are logged here
        done, total = self.progress_start
        self._progress = Progress("predict", total, done=done)
        model_file = self.model_file

        class _Holder:  # Shared needs a weak-referenceable object
            def __init__(self) -> None:
                self.model = serving.load_model(model_file)

        self._holder = self._shared.acquire(_Holder)
        self._model = self._holder.model
        self._multiple = serving.input_multiple(self._model)

    def _predict_fn(self) -> Any:
        from models.serving import predict_tiles

        tta = self.options.tta

        def predict(tiles: Any) -> Any:
            return predict_tiles(self._model, tiles, tta=tta)

        return predict

    def _run(self, task: SceneTask, make_sink: Any, region: PixelWindow | None) -> RegionStats:
        """Predict ``region`` of the task's scene; ``make_sink(height, width)`` → band sink."""
        kwargs: dict[str, Any] = {
            "tile": self.options.tile,
            "overlap": self.options.overlap,
            "channels": NUM_CLASSES,
            "batch_size": self.options.batch_size,
            "region": region,
            "with_probabilities": self.options.probabilities,
        }
        if decoded_by_pil(task.uri):
            image, valid = imaging.decode_image_and_valid(_read(task.uri), task.uri)
            source: Any = ArraySource(image, None if valid.all() else valid)
            stats = self._predict(task, source, make_sink(*image.shape[:2]), kwargs)
        else:
            with open_raster(task.uri) as reader:
                check_rgb(reader.info)
                source = RasterSource(reader)
                sink = make_sink(source.height, source.width)
                stats = self._predict(task, source, sink, kwargs)
        self.forward_us.inc(int(stats.forward_s * 1e6))
        self.tiles_run.inc(stats.tiles_run)
        self.tiles_skipped.inc(stats.tiles_skipped_nodata)
        self.nodata.inc(stats.nodata_pixels)
        self.model_pixels.inc(stats.model_pixels)
        return stats

    def _predict(
        self, task: SceneTask, source: Any, sink: Any, kwargs: dict[str, Any]
    ) -> RegionStats:
        """On the scene's own grid, or through the model's grid when the GSDs differ; with the
        tile planned for the grid the tiles are cut from: the scene's, or a block's own
        (``tiling.plan_region_tile``; ``--tile`` is its largest side)."""
        grid = task.model_grid(source.height, source.width)
        height, width = (source.height, source.width) if grid is None else grid.model
        region = kwargs["region"]
        if grid is not None:  # the model-grid window predict_on_model_grid will stitch
            scene = region or PixelWindow(0, 0, source.height, source.width)
            region = grid.model_region(scene, kwargs["with_probabilities"])
        budget, overlap = kwargs["tile"], kwargs["overlap"]
        tile = plan_region_tile(height, width, region, budget, overlap, self._multiple)
        kwargs = {**kwargs, "tile": tile}
        if grid is None:
            return predict_region(source, self._predict_fn(), sink, **kwargs)
        return predict_on_model_grid(source, self._predict_fn(), sink, grid, **kwargs)

    def process(self, task: SceneTask) -> Iterator[Any]:
        with gdal_env():
            yield from self._process(task)
        if self._progress is not None:
            self._progress.advance(1.0 / task.blocks)  # a block is its share of a scene

    def _process(self, task: SceneTask) -> Iterator[Any]:
        if task.blocks > 1:
            yield from self._block(task)
            return
        sinks: list[Any] = []

        def make_sink(height: int, width: int) -> Any:
            if task.fmt == "cog":
                assert task.info is not None
                tags = scene_tags(task.source, self.model_ref, task.options)
                sinks.append(
                    CogSceneSink(task.scene_id, task.info, self.output_uri, self.options, tags)
                )
            else:
                sinks.append(
                    PngSceneSink(task.scene_id, height, width, self.output_uri, self.options)
                )
            return sinks[-1]

        try:
            stats = self._run(task, make_sink, None)
            written, answers = finish_scene(
                self.output_uri,
                task.scene_id,
                task.fmt,
                sinks[0].finish(),
                source=task.source,
                model=self.model_ref,
                recorded_options=task.options,
                options=self.options,
            )
        except BadInputError as error:
            self.failed.inc()
            yield _error(error.uri, error.reason, task.scene_id)
            return
        finally:
            for sink in sinks:
                sink.close()
        records.fault_point("after-mask-before-record")
        height, width = sinks[0].height, sinks[0].width
        summary = {**task.summary(stats, (height, width)), **answers}
        summary["height"], summary["width"] = height, width
        records.commit(
            self.output_uri,
            task.scene_id,
            source=task.source,
            model=self.model_ref,
            options=task.options,
            outputs=written,
            summary=summary,
        )
        self.predicted.inc()
        if task.scene_gsd is not None:
            self.resampled.inc()
        if task.info is not None and task.info.crs is None:
            self.no_crs.inc()
        yield task.scene_id, stats

    def _block(self, task: SceneTask) -> Iterator[Any]:
        assert task.block is not None and task.info is not None
        self.blocks.inc()
        try:
            sink = BlockSink(task.block)
            stats = self._run(task, lambda height, width: sink, task.block)
            uri = block_uri(self.output_uri, task)
            write_class_block(uri, task.info, task.block, sink.class_ids, sink.valid)
        except BadInputError as error:
            result = BlockResult(task, error=error.reason, error_uri=error.uri)
        else:
            result = BlockResult(task, uri=uri, stats=stats)
        yield beam.pvalue.TaggedOutput(self.BLOCKS, (task.scene_id, result))


def _read(uri: str) -> bytes:
    try:
        return storage.read_bytes(uri)
    except FileNotFoundError:
        raise BadInputError(uri, "file vanished before it could be read") from None


class AssembleScene(beam.DoFn):
    """A scene's blocks → its class-map COG and record; a failed block fails the scene."""

    def __init__(self, output_uri: str, model: ModelRef, options: PredictOptions) -> None:
        self.output_uri, self.model, self.options = output_uri, model, options
        self.predicted = Metrics.counter(METRICS_NAMESPACE, SCENES_PREDICTED)
        self.failed = Metrics.counter(METRICS_NAMESPACE, SCENES_FAILED)
        self.no_crs = Metrics.counter(METRICS_NAMESPACE, SCENES_WITHOUT_CRS)
        self.resampled = Metrics.counter(METRICS_NAMESPACE, SCENES_RESAMPLED)

    def process(self, element: tuple[str, Iterable[BlockResult]]) -> Iterator[Any]:
        with gdal_env():
            yield from self._assemble(element)

    def _assemble(self, element: tuple[str, Iterable[BlockResult]]) -> Iterator[Any]:
        scene_id, results = element
        blocks = sorted(results, key=lambda r: (r.task.block.row_off, r.task.block.col_off))  # type: ignore[union-attr]
        task = blocks[0].task
        written = [r.uri for r in blocks if r.uri]
        try:
            failed = [r for r in blocks if r.error]
            if failed:
                self.failed.inc()
                yield _error(failed[0].error_uri, failed[0].error, scene_id)
                return
            if len(blocks) != task.blocks:
                self.failed.inc()
                yield _error(task.uri, f"{len(blocks)} of {task.blocks} blocks arrived", scene_id)
                return
            assert task.info is not None
            started = time.perf_counter()
            mask_uri = storage.join(self.output_uri, f"{scene_id}{MASK_COG_SUFFIX}")
            tags = scene_tags(task.source, self.model, task.options)
            published = assemble_cog(
                written, mask_uri, task.info, description=class_map_description(tags)
            )
            try:
                outputs, answers = finish_scene(
                    self.output_uri,
                    scene_id,
                    task.fmt,
                    published,
                    source=task.source,
                    model=self.model,
                    recorded_options=task.options,
                    options=self.options,
                )
            except BadInputError as error:
                self.failed.inc()
                yield _error(error.uri, error.reason, scene_id)
                return
            stats = RegionStats()
            for result in blocks:
                assert result.stats is not None
                stats = stats.merge(result.stats)
            stats.seconds += time.perf_counter() - started
            records.fault_point("after-mask-before-record")
            records.commit(
                self.output_uri,
                scene_id,
                source=task.source,
                model=self.model,
                options=task.options,
                outputs=outputs,
                summary={**task.summary(stats), **answers},
            )
        finally:
            storage.delete([uri for uri in written if storage.exists(uri)])
        self.predicted.inc()
        if task.scene_gsd is not None:
            self.resampled.inc()
        if task.info.crs is None:
            self.no_crs.inc()
        yield scene_id, stats


class PredictScenes(beam.PTransform):
    """Scenes → predicted scenes (main output: (scene id, stats)) and error lines (``errors``)."""

    def __init__(
        self,
        model_file_uri: str,
        model: ModelRef,
        output_uri: str,
        options: PredictOptions,
        model_gsd: float | None = None,
        progress: tuple[int, int] = (0, 0),
    ) -> None:
        super().__init__()
        self.model_file_uri, self.model = model_file_uri, model
        self.output_uri, self.options = output_uri, options
        self.model_gsd = model_gsd
        self.progress = progress  # (scenes of earlier waves, scenes in the job)

    def expand(self, scenes: beam.PCollection) -> dict[str, beam.PCollection]:
        planned = scenes | "Plan" >> beam.ParDo(
            PlanScene(self.output_uri, self.options, self.model, self.model_gsd)
        ).with_outputs(ERRORS, main="tasks")
        predicted = (
            planned.tasks
            | "Spread" >> beam.Reshuffle()
            | "PredictBlock"
            >> beam.ParDo(
                PredictBlock(
                    self.model_file_uri, self.output_uri, self.options, self.model, self.progress
                )
            ).with_outputs(ERRORS, PredictBlock.BLOCKS, main="written")
        )
        assembled = (
            predicted[PredictBlock.BLOCKS]
            | "ByScene" >> beam.GroupByKey()
            | "Assemble"
            >> beam.ParDo(AssembleScene(self.output_uri, self.model, self.options)).with_outputs(
                ERRORS, main="written"
            )
        )
        errors = (
            planned[ERRORS],
            predicted[ERRORS],
            assembled[ERRORS],
        ) | "AllErrors" >> beam.Flatten()
        written = (predicted.written, assembled.written) | "AllWritten" >> beam.Flatten()
        return {"written": written, "errors": errors}
