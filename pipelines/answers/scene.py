"""The answers of one predicted scene, written beside its outputs before its done-record.

Called by the predict job once a scene's class map is published (whole or assembled from
blocks), and before ``{id}.done.json``, which lists everything written here, so a scene is done
only with its answers intact:

    {id}_stats.json            class areas (:mod:`stats`), read back from the map by windows
    {id}_polygons.gpkg|parquet class polygons (:mod:`vectorize`), when vectors were asked for
    {id}_item.json             the STAC Item listing every file with its size and checksum

Everything reads the published map, not the stitcher's bands, so the answers describe exactly
the file a user opens, and block-parallel scenes need nothing of their own.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.answers.classmap import read_class_map_info
from pipelines.answers.stac import COG_MEDIA_TYPE, AssetFile, item_name, scene_item, write_item
from pipelines.answers.stats import scene_stats, stats_name
from pipelines.answers.vector_files import MEDIA_TYPES, vector_name
from pipelines.answers.vectorize import vectorize_class_map
from pipelines.core.naming import basename
from pipelines.core.provenance import InputRef, ModelRef
from pipelines.io import storage
from pipelines.io.raster_describe import SIDECAR_SUFFIX

DATETIME_FROM_INPUT = "the input file's modification time (when it arrived)"
DATETIME_FROM_PREDICTION = "the prediction time (the input's storage gave no time)"


@dataclass(frozen=True)
class VectorOptions:
    """What polygons a run writes: ``fmt`` None for none, ``gpkg`` or ``parquet``."""

    fmt: str | None = None
    min_area_m2: float = 0.0
    simplify_px: float = 0.0


@dataclass(frozen=True)
class SceneAnswers:
    """What :func:`answer_scene` wrote (for the record's outputs) and the scene's stats."""

    outputs: tuple[str, ...]
    stats: dict[str, Any]
    vectors: dict[str, Any] | None


def _asset(uri: str, mask_uri: str) -> AssetFile:
    """How the Item lists one of the scene's files, by what its name says it is."""
    name = basename(uri)
    if uri == mask_uri:
        media = COG_MEDIA_TYPE if name.lower().endswith((".tif", ".tiff")) else "image/png"
        return AssetFile("mask", uri, media, ("data",), "land-cover class map")
    if name.endswith(SIDECAR_SUFFIX):
        return AssetFile(
            "mask_metadata", uri, "application/xml", ("metadata",), "class names and RAT (GDAL)"
        )
    if name.endswith("_probs.tif"):
        return AssetFile("probabilities", uri, COG_MEDIA_TYPE, ("data",), "class probabilities")
    if name.endswith("_probs.npz"):
        return AssetFile(
            "probabilities", uri, "application/octet-stream", ("data",), "class probabilities"
        )
    if name.endswith("_classes.png"):
        return AssetFile("class_ids", uri, "image/png", ("data",), "class ids")
    for fmt, media in MEDIA_TYPES.items():
        if name.endswith(vector_name("", fmt)):
            return AssetFile("vectors", uri, media, ("data",), "class polygons")
    if name.endswith(stats_name("")):
        return AssetFile("statistics", uri, "application/json", ("metadata",), "class areas")
    return AssetFile(name, uri, "application/octet-stream", ("data",), name)


def answer_scene(
    scene_id: str,
    output_uri: str,
    mask_uri: str,
    written: Sequence[str],
    *,
    model: ModelRef,
    source: InputRef,
    options: Mapping[str, Any],
    vectors: VectorOptions = VectorOptions(),
    collection_id: str | None = None,
    gsd_m: float | None = None,
) -> SceneAnswers:
    """Stats, polygons and the STAC Item of a scene whose files ``written`` are published.

    ``gsd_m``: the scene's declared ground sample distance (``--gsd``), the pixel size of a map
    without a CRS; None: DeepGlobe's for a DeepGlobe-format PNG, pixels only otherwise.

    Returns the files written here (to add to the record's outputs) and the stats (for its
    summary). Raises ``BadInputError`` when the published map cannot be read back.
    """
    created = dt.datetime.now(dt.UTC)
    stats = scene_stats(mask_uri, scene_id, gsd_m=gsd_m).to_dict()
    stats_uri = storage.join(output_uri, stats_name(scene_id))
    storage.write_text(stats_uri, json.dumps(stats, indent=1))
    mine = [stats_uri]
    vector_summary = None
    if vectors.fmt is not None:
        vectors_uri = storage.join(output_uri, vector_name(scene_id, vectors.fmt))
        vector_summary = vectorize_class_map(
            mask_uri,
            vectors_uri,
            fmt=vectors.fmt,
            min_area_m2=vectors.min_area_m2,
            simplify_px=vectors.simplify_px,
            gsd_m=gsd_m,
        ).to_dict()
        mine.append(vectors_uri)
    arrived = storage.modified_time(source.uri)
    acquired = created if arrived is None else dt.datetime.fromtimestamp(arrived, dt.UTC)
    files = [*written, *mine]
    item = scene_item(
        scene_id=scene_id,
        collection_id=collection_id or basename(output_uri),
        grid=read_class_map_info(mask_uri),
        mask=_asset(mask_uri, mask_uri),
        others=[_asset(uri, mask_uri) for uri in files if uri != mask_uri],
        model=model,
        source=source,
        options=options,
        stats=stats,
        acquired=acquired,
        datetime_source=DATETIME_FROM_PREDICTION if arrived is None else DATETIME_FROM_INPUT,
        created=created,
    )
    item_uri = write_item(output_uri, item)
    assert basename(item_uri) == item_name(scene_id)
    return SceneAnswers(tuple([*mine, item_uri]), stats, vector_summary)
