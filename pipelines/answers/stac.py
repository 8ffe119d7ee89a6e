"""A STAC catalog of the predictions: an Item per scene beside its outputs, a Collection per
predictions folder, all links relative, so the folder can be copied or served as it is.

- **Item** ``{id}_item.json`` (:func:`scene_item`, built with pystac): the footprint and bbox
  in WGS 84 (the grid's outline densified along its edges, then transformed), the projection
  extension (``proj:code`` or ``proj:wkt2``, ``proj:shape``, ``proj:transform``, ``proj:bbox``),
  the classification extension on the mask asset (class values, names, colours, and each class's
  pixel count and share from the scene's statistics), the file extension on every asset (size
  and sha256 as a multihash), the model version and checksum and the input it came from
  (``derived_from`` link, ``landcover:input_sha256``). ``datetime`` is when the input arrived
  (its file's modification time: imagery rarely says when it was taken, and this order survives
  re-predicting old scenes with a new model), ``created`` when it was predicted.
- **Collection** ``collection.json`` (:func:`update_collection`): rebuilt from the Items in the
  folder (its spatial and temporal extent, one ``item`` link each) and replaced in one atomic
  write, so a reader sees the old or the new catalog, never a half-written one.

A scene without a CRS gets an Item without geometry (STAC allows ``null``), still listing its
assets. Validated against the STAC 1.1 and extension JSON schemas in the tests (offline).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pystac
from pyproj import CRS, Transformer
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.projection import ProjectionExtension

from pipelines.answers.areas import crs_label
from pipelines.answers.classmap import ClassMapInfo, list_folder
from pipelines.core.naming import basename
from pipelines.core.palette import CLASS_NAMES
from pipelines.core.provenance import InputRef, ModelRef
from pipelines.io import integrity, storage
from pipelines.io.raster_write import CLASS_NODATA, class_color_table

ITEM_SUFFIX = "_item.json"
COLLECTION_FILE = "collection.json"
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"
JSON_MEDIA_TYPE = "application/json"
# Points per edge of the grid's outline when it is transformed to WGS 84 (curved edges).
_EDGE_POINTS = 21
# sha2-256 as a multihash (function code 0x12, 32 bytes): what file:checksum holds.
_MULTIHASH_SHA256 = "1220"


def item_name(scene_id: str) -> str:
    """``12`` → ``12_item.json``."""
    return f"{scene_id}{ITEM_SUFFIX}"


@dataclass(frozen=True)
class AssetFile:
    """One file of a scene to list in its Item (under ``key``)."""

    key: str
    uri: str
    media_type: str
    roles: tuple[str, ...]
    title: str


def _outline(grid: ClassMapInfo) -> tuple[np.ndarray, np.ndarray]:
    """The grid's edge, densified, in its CRS: (xs, ys), closed."""
    a, b, c, d, e, f = grid.transform
    t = np.linspace(0.0, 1.0, _EDGE_POINTS)[:-1]
    w, h = grid.width, grid.height
    cols = np.concatenate([t * w, np.full_like(t, w), (1 - t) * w, np.zeros_like(t)])
    rows = np.concatenate([np.zeros_like(t), t * h, np.full_like(t, h), (1 - t) * h])
    cols, rows = np.append(cols, cols[0]), np.append(rows, rows[0])
    return c + a * cols + b * rows, f + d * cols + e * rows


def footprint(grid: ClassMapInfo) -> tuple[dict[str, Any] | None, list[float] | None]:
    """GeoJSON polygon and bbox of the grid in WGS 84 (lon, lat); (None, None) without a CRS."""
    if not grid.georeferenced or grid.crs is None:
        return None, None
    xs, ys = _outline(grid)
    to_wgs84 = Transformer.from_crs(CRS.from_wkt(grid.crs), CRS.from_epsg(4326), always_xy=True)
    lons, lats = to_wgs84.transform(xs, ys)
    ring = [[round(float(x), 9), round(float(y), 9)] for x, y in zip(lons, lats, strict=True)]
    ring[-1] = ring[0]
    bbox = [min(p[0] for p in ring), min(p[1] for p in ring)]
    bbox += [max(p[0] for p in ring), max(p[1] for p in ring)]
    return {"type": "Polygon", "coordinates": [ring]}, bbox


def _checksum(uri: str) -> tuple[int, str]:
    size, sha = integrity.digest_of(uri)
    return size, _MULTIHASH_SHA256 + sha


def _classes(stats: Mapping[str, Any] | None) -> list[Classification]:
    colors = class_color_table()
    counts = {c["class_id"]: c for c in (stats or {}).get("classes", [])}
    classes = []
    for value, name in enumerate(CLASS_NAMES):
        r, g, b, _ = colors[value]
        found = counts.get(value)
        share = found.get("share") if found else None
        classes.append(
            Classification.create(
                value=value,
                name=name,
                description=f"DeepGlobe class {name}",
                color_hint=f"{r:02X}{g:02X}{b:02X}",
                count=found["pixels"] if found else None,
                percentage=None if share is None else round(100.0 * share, 6),
            )
        )
    classes.append(
        Classification.create(
            value=CLASS_NODATA, name="nodata", description="no input data", nodata=True
        )
    )
    return classes


def _time(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def scene_item(
    *,
    scene_id: str,
    collection_id: str,
    grid: ClassMapInfo,
    mask: AssetFile,
    others: Sequence[AssetFile] = (),
    model: ModelRef,
    source: InputRef,
    options: Mapping[str, Any],
    stats: Mapping[str, Any] | None,
    acquired: dt.datetime,
    datetime_source: str,
    created: dt.datetime,
) -> dict[str, Any]:
    """The scene's Item as a dict (every asset's file must exist: sizes and checksums).

    ``collection_id`` is the id of the folder's Collection (:func:`update_collection` names it
    after the folder: the model version).
    """
    geometry, bbox = footprint(grid)
    properties: dict[str, Any] = {
        "created": pystac.utils.datetime_to_str(_time(created)),
        "landcover:model_version": model.version,
        "landcover:model_sha256": model.sha256,
        "landcover:input": source.uri,
        "landcover:input_sha256": source.sha256,
        "landcover:input_size": source.size,
        "landcover:datetime_source": datetime_source,
        "landcover:options": dict(options),
    }
    if stats:
        properties["landcover:area_method"] = stats["area"]["method"]
        properties["landcover:valid_area_ha"] = stats.get("valid_area_ha")
    item = pystac.Item(
        id=scene_id,
        geometry=geometry,
        bbox=bbox,
        datetime=_time(acquired),
        properties=properties,
        collection=collection_id,
    )
    projection = ProjectionExtension.ext(item, add_if_missing=True)
    crs = CRS.from_wkt(grid.crs) if grid.crs else None
    code = crs_label(crs) if crs is not None and crs.to_authority(min_confidence=90) else None
    projection.apply(
        code=code,
        wkt2=None if crs is None or code else crs.to_wkt(),
        shape=[grid.height, grid.width],
        transform=[float(v) for v in grid.transform],
        bbox=list(grid.bounds) if crs is not None else None,
    )
    for asset_file in (mask, *others):
        asset = pystac.Asset(
            href=f"./{basename(asset_file.uri)}",
            media_type=asset_file.media_type,
            roles=list(asset_file.roles),
            title=asset_file.title,
        )
        item.add_asset(asset_file.key, asset)
        size, checksum = _checksum(asset_file.uri)
        FileExtension.ext(asset, add_if_missing=True).apply(size=size, checksum=checksum)
    ClassificationExtension.ext(item.assets[mask.key], add_if_missing=True).apply(
        classes=_classes(stats)
    )
    for rel in ("root", "parent", "collection"):
        item.add_link(pystac.Link(rel, f"./{COLLECTION_FILE}", media_type=JSON_MEDIA_TYPE))
    item.add_link(pystac.Link("derived_from", source.uri, title="input scene"))
    return item.to_dict(include_self_link=False, transform_hrefs=False)


def write_item(folder: str, item: Mapping[str, Any]) -> str:
    """Write ``{id}_item.json`` into ``folder`` (atomically); its URI."""
    uri = storage.join(folder, item_name(str(item["id"])))
    integrity.atomic_write(uri, json.dumps(item, indent=1, sort_keys=True))
    return uri


def read_items(folder: str) -> list[dict[str, Any]]:
    """The Items in a predictions folder (unreadable ones skipped: a rebuild never fails on one)."""
    items = []
    for uri in list_folder(folder):
        if not uri.endswith(ITEM_SUFFIX):
            continue
        try:
            found = json.loads(storage.read_text(uri))
        except (ValueError, FileNotFoundError):
            continue
        if isinstance(found, dict) and found.get("type") == "Feature" and "id" in found:
            items.append(found)
    return sorted(items, key=lambda i: str(i["id"]))


def collection_of(
    items: Sequence[Mapping[str, Any]], *, collection_id: str, description: str
) -> dict[str, Any]:
    """The Collection over ``items``: their extent, one relative ``item`` link each."""
    boxes = [i["bbox"] for i in items if i.get("bbox")]
    if boxes:
        spatial = [[min(b[0] for b in boxes), min(b[1] for b in boxes)]]
        spatial[0] += [max(b[2] for b in boxes), max(b[3] for b in boxes)]
    else:
        spatial = [[-180.0, -90.0, 180.0, 90.0]]
    times = sorted(pystac.utils.str_to_datetime(i["properties"]["datetime"]) for i in items)
    interval = [[times[0], times[-1]]] if times else [[None, None]]
    collection = pystac.Collection(
        id=collection_id,
        description=description,
        extent=pystac.Extent(pystac.SpatialExtent(spatial), pystac.TemporalExtent(interval)),  # type: ignore[arg-type]
        license="other",
        title=f"land-cover predictions {collection_id}",
    )
    collection.add_link(pystac.Link("root", f"./{COLLECTION_FILE}", media_type=JSON_MEDIA_TYPE))
    for item in items:
        collection.add_link(
            pystac.Link("item", f"./{item_name(str(item['id']))}", media_type=JSON_MEDIA_TYPE)
        )
    return collection.to_dict(include_self_link=False, transform_hrefs=False)


def update_collection(folder: str, *, collection_id: str | None = None) -> str:
    """Rebuild ``collection.json`` from the folder's Items and replace it atomically; its URI.

    Callers that write the same folder take turns (the flows' predictions lock), so the
    read-rebuild-replace cannot interleave with another; a crash leaves the previous one.
    """
    name = collection_id or basename(folder)
    items = read_items(folder)
    collection = collection_of(
        items,
        collection_id=name,
        description=f"Land-cover class maps predicted by model {name}: one Item per scene.",
    )
    uri = storage.join(folder, COLLECTION_FILE)
    integrity.atomic_write(uri, json.dumps(collection, indent=1, sort_keys=True))
    return uri
