"""Class polygons from a class map, strip by strip, with no seams at the strips' edges.

Each strip of whole rows is polygonised by GDAL (``rasterio.features.shapes``, 4-connected,
nodata masked out) in pixel coordinates, where every vertex is an exact integer. A polygon that
touches neither the strip's top nor its bottom edge is final and written at once (most of
them). One that reaches an edge may continue in the neighbouring strip: the two rows either
side of the edge say which pieces belong together (a pixel and the one below it with the same
class are 4-connected), a union-find groups the pieces, and a group is unioned (shapely) and
written as soon as no piece of it reaches the strip just read. So a region that crosses any
number of tile, band, block or strip edges comes out as one polygon, exactly as polygonising the
whole map would give, while memory holds one strip plus the outlines of the regions still open.

Per polygon: ``pixels`` (its area in pixel space, exact), ``area_m2`` (the sum of its pixels'
ground areas: :mod:`areas`; per row for a geographic CRS, computed from the outline alone by
Green's theorem over the rectilinear boundary, so the polygons of a class sum to the raster's
class area), then ``--min-area`` drops the small ones (they are left out, not merged into a
neighbour), ``--simplify`` (a tolerance in pixels, topology-preserving per polygon: neighbours'
shared edges may then no longer match exactly), and the pixel coordinates go through the
raster's transform into its CRS.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine

from pipelines.answers.areas import AreaError, AreaModel
from pipelines.answers.classmap import STRIP_ROWS, find_class_maps, open_class_map
from pipelines.answers.stats import area_model_of
from pipelines.answers.vector_files import VECTOR_FORMATS, FeatureBatch, open_writer, vector_name
from pipelines.core.errors import ERRORS_DIR, BadInputError, ErrorRecord
from pipelines.core.geo import PixelWindow, Transform
from pipelines.core.naming import mask_id_of
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.io import storage

VECTORIZE_STAGE = "vectorize"  # the stage named in error records
# Features per write: bounds the finished polygons held before they go to the file.
BATCH = 5000
# Strips of this many rows are polygonised at once: 16384 px wide, 8 MB of ids each.
DEFAULT_STRIP_ROWS = 2 * STRIP_ROWS


@dataclass
class _Open:
    """A region still open at the current strip's bottom edge: its class and pieces."""

    class_id: int
    pieces: list[shapely.Polygon]


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _runs(ids: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and class of each run of equal valid values along one row (runs of nodata skipped).

    Returns (start columns, run index of every column or -1 for nodata).
    """
    width = ids.shape[0]
    key = np.where(valid, ids.astype(np.int16), -1)
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    run_of = np.repeat(np.arange(starts.size), np.diff(np.append(starts, width)))
    run_of = np.where(valid, run_of, -1)
    return starts, run_of


def _owners(
    row_ids: np.ndarray, row_valid: np.ndarray, y: float, polygons: Sequence[shapely.Polygon]
) -> np.ndarray:
    """Per column of one row, the index in ``polygons`` of the polygon holding that pixel (-1).

    One point per run of equal values (a run lies in one polygon), located with an STRtree.
    """
    owner = np.full(row_ids.shape[0], -1, dtype=np.int64)
    if not polygons:
        return owner
    starts, run_of = _runs(row_ids, row_valid)
    points = shapely.points(starts + 0.5, np.full(starts.size, y))
    point_index, poly_index = shapely.STRtree(list(polygons)).query(points, predicate="within")
    run_owner = np.full(starts.size, -1, dtype=np.int64)
    run_owner[point_index] = poly_index
    has_run = run_of >= 0
    owner[has_run] = run_owner[run_of[has_run]]
    return owner


def polygons_of(geometries: Sequence[dict[str, Any]]) -> np.ndarray:
    """GeoJSON-like polygons (as ``rasterio.features.shapes`` yields them) → shapely, at once.

    All rings go into one coordinate array and GEOS builds the rings and polygons from it,
    five times faster than one ``shapely.geometry.shape`` call per polygon.
    """
    if not geometries:
        return np.empty(0, dtype=object)
    rings = [ring for geometry in geometries for ring in geometry["coordinates"]]
    rings_per_polygon = [len(geometry["coordinates"]) for geometry in geometries]
    lengths = np.fromiter((len(ring) for ring in rings), np.int64, len(rings))
    flat = np.array([xy for ring in rings for xy in ring], dtype=np.float64)
    linear = shapely.linearrings(flat, indices=np.repeat(np.arange(len(rings)), lengths))
    return shapely.polygons(
        linear, indices=np.repeat(np.arange(len(geometries)), rings_per_polygon)
    )


Emit = Callable[[np.ndarray, np.ndarray], None]


class StripVectorizer:
    """Feed whole-width strips top to bottom; finished regions go to ``emit(classes, polygons)``.

    ``emit`` receives arrays of class ids and of pixel-space polygons (x = column, y = row)
    whose vertices are integers, possibly empty.
    """

    def __init__(self, height: int, width: int, emit: Emit):
        self.height, self.width, self.emit = height, width, emit
        self._open: list[_Open] = []
        self._bottom_owner: np.ndarray | None = None  # per column: index in self._open, or -1
        self._bottom_ids: np.ndarray | None = None
        self._bottom_valid: np.ndarray | None = None
        self._next_row = 0

    def add(self, window: PixelWindow, ids: np.ndarray, valid: np.ndarray) -> None:
        if window.row_off != self._next_row or window.width != self.width or window.col_off:
            raise ValueError(f"strips must be whole rows in order; got ({window.describe()})")
        top, bottom = window.row_off, window.row_stop
        self._next_row = bottom
        shapes = rasterio.features.shapes(
            ids, mask=valid, connectivity=4, transform=Affine(1, 0, 0, 0, 1, top)
        )
        geometries, values = [], []
        for geometry, value in shapes:
            geometries.append(geometry)
            values.append(int(value))
        polygons = polygons_of(geometries)
        pieces = list(zip(polygons, values, strict=True))
        bounds = shapely.bounds(polygons) if pieces else np.empty((0, 4))
        at_top = (bounds[:, 1] == top) if top > 0 else np.zeros(len(pieces), bool)
        at_bottom = (
            (bounds[:, 3] == bottom) if bottom < self.height else np.zeros(len(pieces), bool)
        )
        # Union-find over the open regions (0..n_open-1) and this strip's pieces (n_open..).
        n_open = len(self._open)
        links = _UnionFind(n_open + len(pieces))
        linked = np.zeros(n_open + len(pieces), bool)
        if n_open and at_top.any():
            candidates = np.flatnonzero(at_top)
            top_owner = _owners(ids[0], valid[0], top + 0.5, [pieces[i][0] for i in candidates])
            assert self._bottom_owner is not None
            assert self._bottom_ids is not None and self._bottom_valid is not None
            joined = (
                self._bottom_valid
                & valid[0]
                & (self._bottom_ids == ids[0])
                & (self._bottom_owner >= 0)
                & (top_owner >= 0)
            )
            pairs = np.unique(
                np.stack([self._bottom_owner[joined], candidates[top_owner[joined]]], axis=1),
                axis=0,
            )
            for region, piece in pairs:
                links.union(int(region), n_open + int(piece))
                linked[region] = linked[n_open + piece] = True
        # Pieces that meet no edge they continue across are final at once: most of them.
        involved = linked[n_open:] | at_bottom
        final = np.flatnonzero(~involved)
        self.emit(np.asarray(values, np.int16)[final], polygons[final])
        groups: dict[int, list[int]] = {}
        for node in [*range(n_open), *(n_open + np.flatnonzero(involved)).tolist()]:
            groups.setdefault(links.find(node), []).append(node)
        still_open: list[_Open] = []
        region_of_piece: dict[int, int] = {}
        for members in groups.values():
            class_id = (
                self._open[members[0]].class_id
                if members[0] < n_open
                else pieces[members[0] - n_open][1]
            )
            collected: list[shapely.Polygon] = []
            for node in members:
                if node < n_open:
                    collected += self._open[node].pieces
                else:
                    collected.append(pieces[node - n_open][0])
            continues = any(node >= n_open and at_bottom[node - n_open] for node in members)
            if continues:
                for node in members:
                    if node >= n_open:
                        region_of_piece[node - n_open] = len(still_open)
                still_open.append(_Open(class_id, collected))
            else:
                self._emit_one(class_id, _union(collected))
        self._open = still_open
        if bottom < self.height:
            candidates = np.array(sorted(region_of_piece), dtype=np.int64)
            owner = _owners(ids[-1], valid[-1], bottom - 0.5, [pieces[i][0] for i in candidates])
            region = np.array([region_of_piece[int(i)] for i in candidates], dtype=np.int64)
            self._bottom_owner = np.where(owner >= 0, region[owner] if region.size else -1, -1)
            self._bottom_ids, self._bottom_valid = ids[-1].copy(), valid[-1].copy()

    def finish(self) -> None:
        if self._next_row != self.height:
            raise ValueError(f"strips ended at row {self._next_row} of {self.height}")
        for region in self._open:  # none remain when the last strip reached the bottom
            self._emit_one(region.class_id, _union(region.pieces))
        self._open = []

    def _emit_one(self, class_id: int, polygon: shapely.Polygon) -> None:
        self.emit(np.array([class_id], np.int16), np.array([polygon], dtype=object))


def _union(pieces: Sequence[shapely.Polygon]) -> shapely.Polygon:
    """Pieces of one region (edge-connected, non-overlapping) as one polygon."""
    if len(pieces) == 1:
        return pieces[0]
    merged = shapely.union_all(list(pieces))
    return shapely.simplify(merged, 0.0)  # drop the seams' collinear vertices


def weighted_area(polygon: shapely.Polygon, cumulative: np.ndarray) -> float:
    """Ground area of a pixel-space rectilinear polygon whose row ``y`` pixels weigh
    ``cumulative[y + 1] - cumulative[y]`` m² each, from its outline (Green's theorem).

    ∬ w(y) dx dy = ∮ x·w(y) dy: only vertical edges count, each ``x · (W[y1] − W[y0])``.
    """
    total = 0.0
    for ring_index, ring in enumerate([polygon.exterior, *polygon.interiors]):
        xy = shapely.get_coordinates(ring)
        x0, y0 = xy[:-1, 0], np.rint(xy[:-1, 1]).astype(np.int64)
        y1 = np.rint(xy[1:, 1]).astype(np.int64)
        ring_area = abs(float(np.sum(x0 * (cumulative[y1] - cumulative[y0]))))
        total += ring_area if ring_index == 0 else -ring_area
    return total


def to_crs(polygon: Any, transform: Transform) -> Any:
    """Pixel coordinates (x = column, y = row) → the raster's CRS through its transform.

    One polygon or an array of them (vectorised).
    """
    a, b, c, d, e, f = transform

    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = xy[:, 0], xy[:, 1]
        return np.column_stack([a * x + b * y + c, d * x + e * y + f])

    return shapely.transform(polygon, apply)


@dataclass
class VectorSummary:
    """What a vectorisation wrote: polygons and their area per class, and what was dropped."""

    uri: str
    polygons: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.int64))
    pixels: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.int64))
    area_m2: np.ndarray = field(default_factory=lambda: np.zeros(NUM_CLASSES, np.float64))
    dropped: int = 0
    seconds: float = 0.0
    area: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        has_area = self.area.get("method") != "pixels"
        return {
            "vectors": self.uri,
            "polygons": int(self.polygons.sum()),
            "dropped_below_min_area": self.dropped,
            "area": self.area,
            "classes": [
                {
                    "class_id": i,
                    "name": CLASS_NAMES[i],
                    "polygons": int(self.polygons[i]),
                    "pixels": int(self.pixels[i]),
                    "area_m2": float(self.area_m2[i]) if has_area else None,
                }
                for i in range(NUM_CLASSES)
            ],
            "seconds": round(self.seconds, 3),
        }


class _Emitter:
    """Measures, filters, simplifies and georeferences finished polygons, a batch at a time.

    Polygons are queued as they finish and handled with shapely's vectorised functions when
    :data:`BATCH` have gathered: a scene of millions of tiny polygons (a noisy map) spends its
    time in GEOS, not in Python.
    """

    def __init__(
        self,
        writer: Any,
        model: AreaModel,
        transform: Transform,
        summary: VectorSummary,
        *,
        min_area_m2: float,
        simplify_px: float,
    ) -> None:
        self.writer, self.model, self.transform, self.summary = writer, model, transform, summary
        self.min_area_m2, self.simplify_px = min_area_m2, simplify_px
        self.cumulative = model.cumulative_rows() if model.row_areas_m2 is not None else None
        self.classes: list[int] = []
        self.polygons: list[shapely.Polygon] = []

    def __call__(self, classes: np.ndarray, polygons: np.ndarray) -> None:
        for class_id, polygon in zip(classes.tolist(), polygons, strict=True):
            if isinstance(polygon, shapely.MultiPolygon):  # never seen; kept whole-valued
                self.classes += [class_id] * len(polygon.geoms)
                self.polygons += list(polygon.geoms)
            else:
                self.classes.append(class_id)
                self.polygons.append(polygon)
        if len(self.polygons) >= BATCH:
            self.flush()

    def _areas(self, polygons: np.ndarray, pixels: np.ndarray) -> np.ndarray | None:
        if self.cumulative is not None:
            cumulative = self.cumulative
            return np.array([weighted_area(p, cumulative) for p in polygons], dtype=np.float64)
        if self.model.pixel_area_m2 is not None:
            return pixels * self.model.pixel_area_m2
        return None

    def flush(self) -> None:
        if not self.polygons:
            return
        polygons = np.array(self.polygons, dtype=object)
        classes = np.array(self.classes, dtype=np.int16)
        self.polygons, self.classes = [], []
        pixels = np.rint(shapely.area(polygons)).astype(np.int64)
        areas = self._areas(polygons, pixels)
        if self.min_area_m2 > 0 and areas is not None:
            keep = areas >= self.min_area_m2
            self.summary.dropped += int(np.count_nonzero(~keep))
            polygons, classes, pixels, areas = (
                polygons[keep],
                classes[keep],
                pixels[keep],
                areas[keep],
            )
        if self.simplify_px > 0:
            polygons = shapely.simplify(polygons, self.simplify_px, preserve_topology=True)
        # Else exact: GDAL's polygons have no collinear vertices, and unions drop theirs.
        wkb = shapely.to_wkb(to_crs(polygons, self.transform))
        np.add.at(self.summary.polygons, classes, 1)
        np.add.at(self.summary.pixels, classes, pixels)
        if areas is not None:
            np.add.at(self.summary.area_m2, classes, areas)
        self.writer.write(FeatureBatch.of(wkb, classes, pixels, areas))


def vectorize_class_map(
    uri: str,
    destination: str,
    *,
    fmt: str = "gpkg",
    min_area_m2: float = 0.0,
    simplify_px: float = 0.0,
    gsd_m: float | None = None,
    strip_rows: int = DEFAULT_STRIP_ROWS,
) -> VectorSummary:
    """Polygons of the class map at ``uri`` → ``destination`` (GeoPackage or GeoParquet).

    Raises ``BadInputError`` for a map that cannot be read, ValueError for a ``min_area_m2``
    on a map whose pixels have no known area (give ``gsd_m``).
    """
    if fmt not in VECTOR_FORMATS:
        raise ValueError(f"vector format must be one of {', '.join(VECTOR_FORMATS)}, got {fmt!r}")
    if min_area_m2 < 0 or simplify_px < 0:
        raise ValueError("min area and simplify tolerance must be >= 0")
    started = time.perf_counter()
    summary = VectorSummary(destination)
    with (
        open_class_map(uri) as reader,
        tempfile.TemporaryDirectory(prefix="landcover-vectors-") as tmp,
        rasterio.Env(GDAL_CACHEMAX=256),
    ):
        info = reader.info
        model = area_model_of(info, gsd_m)
        if min_area_m2 > 0 and not model.has_area:
            raise ValueError(f"{uri}: --min-area needs pixel areas: {model.source}")
        summary.area = model.to_dict()
        local = os.path.join(tmp, f"polygons.{fmt}")
        writer = open_writer(fmt, local, info.crs)
        emit = _Emitter(
            writer, model, info.transform, summary, min_area_m2=min_area_m2, simplify_px=simplify_px
        )
        strips = StripVectorizer(info.height, info.width, emit)
        for window, ids, valid in reader.strips(strip_rows):
            strips.add(window, ids, valid)
        strips.finish()
        emit.flush()
        writer.close()
        storage.upload_file(local, destination)
    summary.seconds = time.perf_counter() - started
    return summary


def run_vectorize(
    pred_uri: str,
    output_uri: str | None = None,
    *,
    fmt: str = "gpkg",
    min_area_m2: float = 0.0,
    simplify_px: float = 0.0,
    gsd_m: float | None = None,
    strip_rows: int = DEFAULT_STRIP_ROWS,
) -> dict[str, Any]:
    """Polygons of every class map under ``pred_uri`` (a predictions folder, or one map).

    Writes ``{id}_polygons.gpkg|parquet`` to ``output_uri`` (default: beside the maps); a map
    that cannot be read goes to ``errors/vectorize-*.jsonl`` there and the others go on.
    """
    if fmt not in VECTOR_FORMATS:
        raise ValueError(f"vector format must be one of {', '.join(VECTOR_FORMATS)}, got {fmt!r}")
    maps = find_class_maps(pred_uri)
    folder = pred_uri if mask_id_of(pred_uri) is None else pred_uri.rsplit("/", 1)[0]
    output = output_uri or folder
    written: dict[str, Any] = {}
    errors: list[str] = []
    for scene_id, uri in maps:
        destination = storage.join(output, vector_name(scene_id, fmt))
        try:
            summary = vectorize_class_map(
                uri,
                destination,
                fmt=fmt,
                min_area_m2=min_area_m2,
                simplify_px=simplify_px,
                gsd_m=gsd_m,
                strip_rows=strip_rows,
            )
        except (BadInputError, AreaError, ValueError) as error:
            bad = error if isinstance(error, BadInputError) else BadInputError(uri, str(error))
            errors.append(ErrorRecord.from_error(bad, VECTORIZE_STAGE, scene_id).to_json())
            continue
        written[scene_id] = summary.to_dict()
    error_file = None
    if errors:
        tag = time.strftime("%Y%m%dT%H%M%S")
        error_file = storage.join(output, ERRORS_DIR, f"{VECTORIZE_STAGE}-{tag}.jsonl")
        storage.write_text(error_file, "\n".join(errors) + "\n")
    return {
        "scenes": len(maps),
        "written": len(written),
        "failed": len(errors),
        "output": output,
        "vectors": {k: v["vectors"] for k, v in written.items()},
        "polygons": {k: v["polygons"] for k, v in written.items()},
        "errors": error_file,
    }
