"""Class areas of a predicted scene: pixels, m² and ha per class, nodata left out, by windows.

A scene's :class:`SceneStats` goes into its done-record, into ``{id}_stats.json`` beside its
outputs (a STAC asset) and, as one row per class, into the run's table (:mod:`tables`). The
area of each class is the sum over its pixels of their ground area (:mod:`areas`): one number
per pixel for a projected CRS or a GSD, one per row for a geographic CRS. Pixel counts are
exact integers; nodata pixels are counted apart and belong to no class.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.answers.areas import AreaError, AreaModel, area_model, hectares
from pipelines.answers.classmap import STRIP_ROWS, ClassMapInfo, find_class_maps, open_class_map
from pipelines.answers.tables import STATS_SCHEMA, write_table
from pipelines.core.errors import ERRORS_DIR, BadInputError, ErrorRecord
from pipelines.core.geo import PixelWindow
from pipelines.core.gsd import DEEPGLOBE_GSD_M
from pipelines.core.naming import mask_id_of
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.core.provenance import OutputRecord, done_name
from pipelines.io import storage

STATS_SUFFIX = "_stats.json"
TABLE_NAME = "stats"  # stats.parquet + stats.csv
STATS_STAGE = "stats"  # the stage named in error records
STATS_SCHEMA_VERSION = 1
DEEPGLOBE_GSD_SOURCE = f"DeepGlobe's {DEEPGLOBE_GSD_M:g} m (the default for JPEG/PNG scenes)"


def stats_name(scene_id: str) -> str:
    """``123`` → ``123_stats.json``."""
    return f"{scene_id}{STATS_SUFFIX}"


@dataclass(frozen=True)
class ClassArea:
    """One class of one scene: its pixels and their ground area (None when unknown)."""

    class_id: int
    name: str
    pixels: int
    area_m2: float | None

    @property
    def area_ha(self) -> float | None:
        return hectares(self.area_m2)


@dataclass(frozen=True)
class SceneStats:
    """Areas per class of one class map, and how they were computed."""

    scene_id: str
    uri: str
    width: int
    height: int
    area: AreaModel
    classes: tuple[ClassArea, ...]
    nodata_pixels: int

    @property
    def valid_pixels(self) -> int:
        return sum(c.pixels for c in self.classes)

    @property
    def valid_area_m2(self) -> float | None:
        areas = [c.area_m2 for c in self.classes]
        return None if any(a is None for a in areas) else float(sum(areas))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the record's ``stats`` and ``{id}_stats.json``."""
        valid = self.valid_pixels
        return {
            "schema_version": STATS_SCHEMA_VERSION,
            "scene_id": self.scene_id,
            "class_map": self.uri,
            "width": self.width,
            "height": self.height,
            "area": self.area.to_dict(),
            "nodata_pixels": self.nodata_pixels,
            "valid_pixels": valid,
            "valid_area_m2": self.valid_area_m2,
            "valid_area_ha": hectares(self.valid_area_m2),
            "classes": [
                {
                    "class_id": c.class_id,
                    "name": c.name,
                    "pixels": c.pixels,
                    "share": c.pixels / valid if valid else None,
                    "area_m2": c.area_m2,
                    "area_ha": c.area_ha,
                }
                for c in self.classes
            ],
        }

    def rows(self, extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """One table row per class (:func:`stats_rows`)."""
        return stats_rows(self.to_dict(), extra)


def stats_rows(stats: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> list[dict]:
    """A scene's stats (the JSON form, as records carry it) as one table row per class.

    Every class has a row, zero areas included, so tables of many scenes align. ``extra``
    columns (the model version, the run) are added to each row.
    """
    area = stats["area"]
    common = {
        "scene_id": stats["scene_id"],
        "area_method": area["method"],
        "area_source": area["source"],
        "crs": area["crs"],
        "nodata_pixels": stats["nodata_pixels"],
        "class_map": stats["class_map"],
        **(extra or {}),
    }
    return [
        {
            **common,
            "class_id": c["class_id"],
            "class_name": c["name"],
            "pixels": c["pixels"],
            "share": c["share"],
            "area_m2": c["area_m2"],
            "area_ha": c["area_ha"],
        }
        for c in stats["classes"]
    ]


class AreaAccumulator:
    """Pixel counts and areas per value (class ids, or change codes: ``bins``), window by window.

    Windows may come in any order but must not overlap.
    """

    def __init__(self, model: AreaModel, bins: int = NUM_CLASSES) -> None:
        self.model, self.bins = model, bins
        self.pixels = np.zeros(bins, np.int64)
        self.nodata = 0
        self._row_weighted = model.row_areas_m2 is not None
        self._area = np.zeros(bins, np.float64)

    def add(self, window: PixelWindow, values: np.ndarray, valid: np.ndarray) -> None:
        self.nodata += int(valid.size - np.count_nonzero(valid))
        if not self._row_weighted:
            self.pixels += np.bincount(values[valid], minlength=self.bins)[: self.bins]
            return
        # Per-row counts: each row's pixels have their own area.
        rows = np.broadcast_to(np.arange(window.height)[:, None], values.shape)
        index = rows[valid].astype(np.int64) * self.bins + values[valid]
        counts = np.bincount(index, minlength=window.height * self.bins).reshape(
            window.height, self.bins
        )
        self.pixels += counts.sum(axis=0)
        area = self.model.area_of_counts(window.row_off, counts)
        assert area is not None
        self._area += area

    def areas_m2(self) -> list[float | None]:
        if self._row_weighted:
            return [float(v) for v in self._area]
        if self.model.pixel_area_m2 is None:
            return [None] * self.bins
        # Exact counts times one pixel's area: no summation error however large the scene.
        return [int(n) * self.model.pixel_area_m2 for n in self.pixels]

    def classes(self) -> tuple[ClassArea, ...]:
        """Per class (``bins`` = the palette's classes)."""
        return tuple(
            ClassArea(i, CLASS_NAMES[i], int(self.pixels[i]), area)
            for i, area in enumerate(self.areas_m2())
        )


def area_model_of(
    info: ClassMapInfo, gsd_m: float | None = None, gsd_source: str = "--gsd"
) -> AreaModel:
    """A class map's area model; a DeepGlobe-format PNG without ``gsd_m`` gets DeepGlobe's GSD."""
    if gsd_m is None and info.crs is None and info.encoding != "ids":
        gsd_m, gsd_source = DEEPGLOBE_GSD_M, DEEPGLOBE_GSD_SOURCE
    return area_model(
        info.crs, info.transform, info.height, info.width, gsd_m=gsd_m, gsd_source=gsd_source
    )


def scene_stats(
    uri: str,
    scene_id: str | None = None,
    *,
    gsd_m: float | None = None,
    gsd_source: str = "--gsd",
    strip_rows: int = STRIP_ROWS,
) -> SceneStats:
    """Areas per class of the class map at ``uri``, read strip by strip.

    ``gsd_m`` gives areas to a map without a CRS. Raises ``BadInputError`` naming the file for
    a map that cannot be read, ``AreaError`` for a CRS without usable units.
    """
    with open_class_map(uri) as reader:
        info = reader.info
        model = area_model_of(info, gsd_m, gsd_source)
        totals = AreaAccumulator(model)
        for window, ids, valid in reader.strips(strip_rows):
            totals.add(window, ids, valid)
    return SceneStats(
        scene_id=scene_id or mask_id_of(uri) or uri,
        uri=uri,
        width=info.width,
        height=info.height,
        area=model,
        classes=totals.classes(),
        nodata_pixels=totals.nodata,
    )


def _model_version(folder: str, scene_id: str) -> str | None:
    """The model version in the scene's done-record beside its map, when there is one."""
    uri = storage.join(folder, done_name(scene_id))
    if not storage.exists(uri):
        return None
    try:
        return OutputRecord.from_json(storage.read_bytes(uri)).model.version
    except (FileNotFoundError, ValueError):
        return None


def run_stats(
    pred_uri: str,
    output_uri: str | None = None,
    *,
    gsd_m: float | None = None,
    strip_rows: int = STRIP_ROWS,
) -> dict[str, Any]:
    """Areas of every class map under ``pred_uri`` (a predictions folder, or one map).

    Writes ``{id}_stats.json`` per scene and the table ``stats.parquet`` + ``stats.csv`` to
    ``output_uri`` (default: ``<predictions>/stats``); a map that cannot be read goes to
    ``errors/stats-*.jsonl`` there, and the others are still written.
    """
    maps = find_class_maps(pred_uri)
    folder = pred_uri if mask_id_of(pred_uri) is None else pred_uri.rsplit("/", 1)[0]
    output = output_uri or storage.join(folder, "stats")
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for scene_id, uri in maps:
        try:
            stats = scene_stats(uri, scene_id, gsd_m=gsd_m, strip_rows=strip_rows)
        except (BadInputError, AreaError) as error:
            bad = error if isinstance(error, BadInputError) else BadInputError(uri, str(error))
            errors.append(ErrorRecord.from_error(bad, STATS_STAGE, scene_id).to_json())
            continue
        record = stats.to_dict()
        storage.write_text(storage.join(output, stats_name(scene_id)), json.dumps(record, indent=1))
        rows += stats_rows(record, {"model_version": _model_version(folder, scene_id)})
    table = write_table(
        rows,
        STATS_SCHEMA,
        storage.join(output, TABLE_NAME + ".parquet"),
        storage.join(output, TABLE_NAME + ".csv"),
    )
    error_file = None
    if errors:
        tag = time.strftime("%Y%m%dT%H%M%S")
        error_file = storage.join(output, ERRORS_DIR, f"{STATS_STAGE}-{tag}.jsonl")
        storage.write_text(error_file, "\n".join(errors) + "\n")
    return {
        "scenes": len(maps),
        "written": len(maps) - len(errors),
        "failed": len(errors),
        "output": output,
        "table": list(table),
        "errors": error_file,
    }
