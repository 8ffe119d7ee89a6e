"""Change between two dates of one place: pair class maps, bring them onto one grid, count.

- **Pairing** (:func:`pair_maps`): by scene id first; a georeferenced map left over is paired
  with the georeferenced map of the other date whose footprint overlaps it most (bounds
  intersected in ``before``'s CRS). Maps without a georeference pair by id only.
- **One grid**: the change map is on ``before``'s grid. When ``after``'s grid differs (CRS,
  transform or size) it is warped onto ``before``'s with nearest resampling through a GDAL
  WarpedVRT, read window by window, so memory stays one strip of each map whatever their size.
  Outside ``after``'s extent is nodata. Maps without a georeference must have the same size.
- **Counting** (:func:`compute_change`): codes ``from * 7 + to`` (:mod:`pipelines.core.change`),
  nodata in either date is nodata; the from→to matrix in pixels and hectares (pixel areas of
  ``before``'s grid, :mod:`areas`); a change COG with a colour table and the transition names
  as its categories; and ``{pair}_change.json`` holding the matrix and the transitions.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from pipelines.answers.areas import hectares
from pipelines.answers.classmap import (
    STRIP_ROWS,
    ClassMapInfo,
    ClassMapReader,
    open_class_map,
    read_class_map_info,
)
from pipelines.answers.stats import AreaAccumulator, area_model_of
from pipelines.core.change import (
    CHANGE_NODATA,
    NUM_CODES,
    change_codes,
    change_color_table,
    classes_of,
    code_of,
    matrix_of,
    transition_color,
    transition_name,
)
from pipelines.core.errors import BadInputError
from pipelines.core.palette import CLASS_NAMES, NUM_CLASSES
from pipelines.core.uris import normalize_name
from pipelines.io import storage
from pipelines.io.code_version import code_version
from pipelines.io.raster_describe import Category, RasterDescription
from pipelines.io.raster_read import RasterInfo
from pipelines.io.raster_write import TiledCogWriter

CHANGE_SUFFIX = "_change.tif"
MATRIX_SUFFIX = "_change.json"
MATCHED_BY = ("id", "footprint")
# Two transforms closer than this fraction of a pixel are one grid.
_GRID_TOLERANCE = 1e-9


@dataclass(frozen=True)
class ScenePair:
    """Two class maps of one place: ``before`` and ``after``, and how they were matched."""

    pair_id: str
    before_id: str
    before_uri: str
    after_id: str
    after_uri: str
    matched_by: str

    def to_dict(self) -> dict[str, str]:
        return {
            "pair_id": self.pair_id,
            "before_id": self.before_id,
            "before_uri": self.before_uri,
            "after_id": self.after_id,
            "after_uri": self.after_uri,
            "matched_by": self.matched_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenePair:
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})


def pair_id_of(before_id: str, after_id: str) -> str:
    """``a`` for one id, ``a__b`` for two; a name safe in any folder."""
    return normalize_name(before_id if before_id == after_id else f"{before_id}__{after_id}")


def _overlap(before: ClassMapInfo, after: ClassMapInfo) -> float:
    """Area (in ``before``'s CRS units²) where the two footprints' bounds intersect."""
    assert before.crs is not None and after.crs is not None
    left, bottom, right, top = transform_bounds(
        CRS.from_wkt(after.crs), CRS.from_wkt(before.crs), *after.bounds, densify_pts=21
    )
    b_left, b_bottom, b_right, b_top = before.bounds
    width = min(right, b_right) - max(left, b_left)
    height = min(top, b_top) - max(bottom, b_bottom)
    return width * height if width > 0 and height > 0 else 0.0


def pair_maps(
    before: Sequence[tuple[str, str]],
    after: Sequence[tuple[str, str]],
    infos: Mapping[str, ClassMapInfo] | None = None,
) -> tuple[list[ScenePair], list[str]]:
    """Pairs of (scene id, URI) lists of two dates; and a line for each map left unpaired.

    ``infos`` (URI → :class:`ClassMapInfo`) saves reading each map's header again.
    """
    infos = dict(infos or {})

    def info(uri: str) -> ClassMapInfo:
        if uri not in infos:
            infos[uri] = read_class_map_info(uri)
        return infos[uri]

    after_by_id = dict(after)
    pairs: list[ScenePair] = []
    left_over: list[tuple[str, str]] = []
    for scene_id, uri in before:
        if scene_id in after_by_id:
            after_uri = after_by_id[scene_id]
            pairs.append(
                ScenePair(pair_id_of(scene_id, scene_id), scene_id, uri, scene_id, after_uri, "id")
            )
        else:
            left_over.append((scene_id, uri))
    paired_ids = {p.before_id for p in pairs}
    candidates = [(i, u) for i, u in after if i not in paired_ids and info(u).georeferenced]
    notes: list[str] = []
    for scene_id, uri in left_over:
        if not info(uri).georeferenced:
            notes.append(f"{uri}: no map of the other date has scene id {scene_id!r}")
            continue
        # The largest overlap wins; equal overlaps go to the lower scene id.
        scored = sorted((-_overlap(info(uri), info(u)), i, u) for i, u in candidates)
        if not scored or scored[0][0] >= 0:
            notes.append(f"{uri}: no map of the other date overlaps its footprint")
            continue
        _, after_id, after_uri = scored[0]
        pairs.append(
            ScenePair(
                pair_id_of(scene_id, after_id), scene_id, uri, after_id, after_uri, "footprint"
            )
        )
    taken = {p.after_uri for p in pairs}
    notes += [f"{u}: no map of the other date pairs with it" for _, u in after if u not in taken]
    return sorted(pairs, key=lambda p: p.pair_id), notes


def same_grid(a: ClassMapInfo, b: ClassMapInfo) -> bool:
    """True when two maps share CRS, transform and size: no warping between them."""
    if (a.width, a.height) != (b.width, b.height):
        return False
    if (a.crs is None) != (b.crs is None):
        return False
    if a.crs is not None and b.crs is not None and CRS.from_wkt(a.crs) != CRS.from_wkt(b.crs):
        return False
    scale = max(abs(v) for v in (*a.transform[:2], *a.transform[3:5])) or 1.0
    return all(
        abs(x - y) <= _GRID_TOLERANCE * max(scale, abs(x), abs(y))
        for x, y in zip(a.transform, b.transform, strict=True)
    )


@contextlib.contextmanager
def open_on_grid(uri: str, grid: ClassMapInfo) -> Iterator[tuple[ClassMapReader, bool]]:
    """``uri``'s class map read on ``grid``'s pixels: (reader, whether it was warped).

    Nearest resampling (class ids are never averaged); pixels outside the map are nodata.
    """
    with open_class_map(uri) as reader:
        info = reader.info
        if same_grid(info, grid):
            yield reader, False
            return
        if info.crs is None or grid.crs is None:
            raise BadInputError(
                uri,
                f"is {info.height}x{info.width} without a georeference to bring onto the other "
                f"date's {grid.height}x{grid.width} grid",
            )
        if info.encoding != "ids":
            raise BadInputError(uri, "a colour-coded map cannot be warped; use the class-id COG")
        nodata = CHANGE_NODATA if info.nodata is None else info.nodata
        with WarpedVRT(
            reader.dataset,
            crs=CRS.from_wkt(grid.crs),
            transform=Affine(*grid.transform),
            width=grid.width,
            height=grid.height,
            resampling=Resampling.nearest,
            nodata=nodata,
        ) as vrt:
            warped = replace(grid, uri=uri, nodata=nodata, encoding="ids")
            yield ClassMapReader(vrt, warped), True


def change_categories() -> tuple[Category, ...]:
    """Every code as a category: ``forest → urban`` with its colour."""
    return tuple(
        Category(code_of(f, t), transition_name(f, t), transition_color(f, t))
        for f in range(NUM_CLASSES)
        for t in range(NUM_CLASSES)
    )


def change_description(pair: ScenePair) -> RasterDescription:
    return RasterDescription(
        tags={
            "LANDCOVER_CHANGE_BEFORE": pair.before_uri,
            "LANDCOVER_CHANGE_AFTER": pair.after_uri,
            "LANDCOVER_CHANGE_MATCHED_BY": pair.matched_by,
            "LANDCOVER_CODE_VERSION": code_version(),
            "TIFFTAG_SOFTWARE": f"landcover ({code_version()})",
        },
        band_descriptions=(
            f"land-cover change code: from * {NUM_CLASSES} + to (nodata {CHANGE_NODATA})",
        ),
        categories=change_categories(),
    )


def _raster_info(grid: ClassMapInfo) -> RasterInfo:
    """The writer's view of a grid (the class-map writers take a RasterInfo)."""
    return RasterInfo(
        uri=grid.uri,
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=1,
        dtype="uint8",
        crs=grid.crs,
        transform=grid.transform,
        nodata=None,
        has_alpha=False,
        block_shape=(STRIP_ROWS, grid.width),
    )


def transitions(
    pixels: np.ndarray, areas: Sequence[float | None], *, changed_only: bool = False
) -> list[dict[str, Any]]:
    """Non-zero matrix cells as rows, largest area (then pixels) first."""
    rows = []
    for code in range(NUM_CODES):
        if pixels[code] == 0:
            continue
        f, t = classes_of(code)
        if changed_only and f == t:
            continue
        rows.append(
            {
                "from_id": f,
                "to_id": t,
                "from_class": CLASS_NAMES[f],
                "to_class": CLASS_NAMES[t],
                "transition": transition_name(f, t),
                "pixels": int(pixels[code]),
                "area_m2": areas[code],
                "area_ha": hectares(areas[code]),
            }
        )
    return sorted(rows, key=lambda r: (-(r["area_m2"] or 0.0), -r["pixels"], r["from_id"]))


def compute_change(
    pair: ScenePair,
    output_uri: str,
    *,
    gsd_m: float | None = None,
    strip_rows: int = STRIP_ROWS,
) -> dict[str, Any]:
    """The change map and matrix of one pair, written under ``output_uri``; its JSON record.

    Raises ``BadInputError`` naming the map when one cannot be read or brought onto the
    other's grid; nothing is published for the pair then.
    """
    change_uri = storage.join(output_uri, f"{pair.pair_id}{CHANGE_SUFFIX}")
    matrix_uri = storage.join(output_uri, f"{pair.pair_id}{MATRIX_SUFFIX}")
    with open_class_map(pair.before_uri) as before, contextlib.ExitStack() as stack:
        grid = before.info
        after, warped = stack.enter_context(open_on_grid(pair.after_uri, grid))
        model = area_model_of(grid, gsd_m)
        totals = AreaAccumulator(model, bins=NUM_CODES)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            writer = TiledCogWriter(
                change_uri,
                _raster_info(grid),
                count=1,
                nodata=CHANGE_NODATA,
                colormap=change_color_table(),
                description=change_description(pair),
            )
        with writer, rasterio.Env(GDAL_CACHEMAX=256):
            for window, before_ids, before_valid in before.strips(strip_rows):
                after_ids, after_valid = after.read(window)
                valid = before_valid & after_valid
                codes = change_codes(
                    np.where(valid, before_ids, 0), np.where(valid, after_ids, 0), valid
                )
                writer.write_bands(window, codes)
                totals.add(window, codes, valid)
    areas = totals.areas_m2()
    matrix_pixels = matrix_of(totals.pixels)
    diagonal = np.eye(NUM_CLASSES, dtype=bool)
    area_matrix = (
        None
        if areas[0] is None
        else matrix_of(np.array(areas, dtype=np.float64)) / 10_000.0  # hectares
    )
    record = {
        **pair.to_dict(),
        "regridded": warped,
        "width": grid.width,
        "height": grid.height,
        "area": model.to_dict(),
        "classes": list(CLASS_NAMES),
        "nodata_pixels": totals.nodata,
        "matrix_pixels": matrix_pixels.tolist(),
        "matrix_ha": None if area_matrix is None else area_matrix.tolist(),
        "changed_pixels": int(matrix_pixels[~diagonal].sum()),
        "unchanged_pixels": int(matrix_pixels[diagonal].sum()),
        "changed_ha": None if area_matrix is None else float(area_matrix[~diagonal].sum()),
        "unchanged_ha": None if area_matrix is None else float(area_matrix[diagonal].sum()),
        "transitions": transitions(totals.pixels, areas),
        "outputs": {"change_map": change_uri, "matrix": matrix_uri},
    }
    storage.write_text(matrix_uri, json.dumps(record, indent=1))
    return record


def summary_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A pair's record as rows of the run's change table (one per non-zero transition)."""
    return [
        {
            "pair_id": record["pair_id"],
            "before": record["before_id"],
            "after": record["after_id"],
            "from_class": t["from_class"],
            "to_class": t["to_class"],
            "from_id": t["from_id"],
            "to_id": t["to_id"],
            "pixels": t["pixels"],
            "area_m2": t["area_m2"],
            "area_ha": t["area_ha"],
            "area_method": record["area"]["method"],
            "matched_by": record["matched_by"],
        }
        for t in record["transitions"]
    ]


def summary_lines(records: Sequence[Mapping[str, Any]], top: int = 5) -> list[str]:
    """People's lines: ``pair 12: forest → urban: 12.4 ha`` (largest changes of each pair)."""
    lines = []
    for record in records:
        changed = [t for t in record["transitions"] if t["from_id"] != t["to_id"]]
        if not changed:
            lines.append(f"{record['pair_id']}: no change")
            continue
        for t in changed[:top]:
            amount = f"{t['area_ha']:.2f} ha" if t["area_ha"] is not None else f"{t['pixels']} px"
            lines.append(f"{record['pair_id']}: {t['transition']}: {amount}")
    return lines


def pairs_with_previous(folder: str, new_ids: Sequence[str]) -> list[ScenePair]:
    """Each new scene paired with the previous map of the same footprint in ``folder``'s catalog.

    For every scene of ``new_ids`` with a footprint, the previous map is the latest other Item
    of the folder (:mod:`stac`) whose ``datetime`` is earlier, whose input differs and whose
    footprint overlaps it (largest overlap breaks a tie). One predictions folder holds one
    model's maps, so a pair compares land, not models. Scenes without a georeference or
    without an earlier overlapping map get no pair.
    """
    import shapely
    from pystac.utils import str_to_datetime
    from shapely.geometry import shape

    from pipelines.answers.stac import read_items

    items = [i for i in read_items(folder) if i.get("geometry")]
    footprints = {str(i["id"]): shape(i["geometry"]) for i in items}
    times = {str(i["id"]): str_to_datetime(i["properties"]["datetime"]) for i in items}
    inputs = {str(i["id"]): i["properties"].get("landcover:input_sha256") for i in items}
    masks = {str(i["id"]): i["assets"]["mask"]["href"] for i in items if "mask" in i["assets"]}
    pairs = []
    for new in sorted(set(new_ids) & set(footprints)):
        candidates = []
        for old in footprints:
            if old == new or inputs[old] == inputs[new] or not times[old] < times[new]:
                continue
            overlap = shapely.intersection(footprints[old], footprints[new]).area
            if overlap > 0:
                candidates.append((times[old], overlap, old))
        if not candidates or new not in masks:
            continue
        _, _, old = max(candidates)
        pairs.append(
            ScenePair(
                pair_id=pair_id_of(old, new),
                before_id=old,
                before_uri=storage.join(folder, basename_of(masks[old])),
                after_id=new,
                after_uri=storage.join(folder, basename_of(masks[new])),
                matched_by="footprint",
            )
        )
    return pairs


def basename_of(href: str) -> str:
    """An Item's relative asset href (``./x_mask.tif``) → the file name."""
    return href.rsplit("/", 1)[-1]
