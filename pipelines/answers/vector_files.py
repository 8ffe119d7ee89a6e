"""Class polygons on disk: GeoPackage (pyogrio, opens in QGIS) or GeoParquet (pyarrow).

Both are written in batches as polygons are finished, so memory holds one batch, not the
scene's polygons; both get the same fields (:data:`FIELDS`) and the raster's CRS.

- **GeoPackage** through ``pyogrio.raw.write`` (GDAL/OGR, no geopandas): the first batch creates
  the layer, later ones append; GDAL builds the spatial index.
- **GeoParquet** through pyarrow (pyogrio's bundled GDAL has no Parquet driver): WKB geometry
  plus the ``geo`` file metadata of GeoParquet 1.1 (encoding, geometry types, the CRS as
  PROJJSON, or ``null`` for a raster without a CRS, since an absent ``crs`` means OGC:CRS84).

Files are built in local scratch and published by the caller (``storage.upload_file``).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio.raw
from pyproj import CRS

from pipelines.core.palette import CLASS_NAMES

VECTOR_FORMATS: tuple[str, ...] = ("gpkg", "parquet")
VECTOR_SUFFIXES: dict[str, str] = {"gpkg": "_polygons.gpkg", "parquet": "_polygons.parquet"}
MEDIA_TYPES: dict[str, str] = {
    "gpkg": "application/geopackage+sqlite3",
    "parquet": "application/vnd.apache.parquet",
}
LAYER = "landcover"
GEOPARQUET_VERSION = "1.1.0"
# (name, numpy dtype, Arrow type) of each feature's attributes.
FIELDS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("class_id", "int16", pa.int16()),
    ("class_name", "object", pa.string()),
    ("pixels", "int64", pa.int64()),
    ("area_m2", "float64", pa.float64()),
    ("area_ha", "float64", pa.float64()),
)


def vector_name(scene_id: str, fmt: str) -> str:
    """``12`` + ``gpkg`` → ``12_polygons.gpkg``."""
    if fmt not in VECTOR_FORMATS:
        raise ValueError(f"vector format must be one of {', '.join(VECTOR_FORMATS)}, got {fmt!r}")
    return f"{scene_id}{VECTOR_SUFFIXES[fmt]}"


@dataclass(frozen=True)
class FeatureBatch:
    """Polygons and their attributes as columns: WKB geometry in the raster's CRS, class id
    and name, pixels, area (m², NaN when unknown) and ha."""

    wkb: np.ndarray
    class_id: np.ndarray
    class_name: np.ndarray
    pixels: np.ndarray
    area_m2: np.ndarray
    area_ha: np.ndarray

    @classmethod
    def of(
        cls, wkb: np.ndarray, class_id: np.ndarray, pixels: np.ndarray, area_m2: np.ndarray | None
    ) -> FeatureBatch:
        area = np.full(len(wkb), np.nan) if area_m2 is None else np.asarray(area_m2, np.float64)
        return cls(
            wkb=np.asarray(wkb, dtype=object),
            class_id=np.asarray(class_id, dtype=np.int16),
            class_name=np.array([CLASS_NAMES[int(c)] for c in class_id], dtype=object),
            pixels=np.asarray(pixels, dtype=np.int64),
            area_m2=area,
            area_ha=area / 10_000.0,
        )

    @classmethod
    def empty(cls) -> FeatureBatch:
        return cls.of(np.array([], object), np.array([], np.int16), np.array([], np.int64), None)

    def __len__(self) -> int:
        return len(self.wkb)


class VectorWriter(Protocol):
    def write(self, batch: FeatureBatch) -> None: ...

    def close(self) -> None: ...


class GeoPackageWriter:
    """Appends batches of features to one layer of a local GeoPackage."""

    def __init__(self, path: str, crs_wkt: str | None) -> None:
        self.path, self.crs = path, crs_wkt
        self._created = False

    def write(self, batch: FeatureBatch) -> None:
        if not len(batch) and self._created:
            return
        with warnings.catch_warnings():
            # A raster without a CRS gives polygons without one, on purpose (pixel coordinates).
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            pyogrio.raw.write(
                self.path,
                batch.wkb,
                [getattr(batch, name) for name, _, _ in FIELDS],
                [name for name, _, _ in FIELDS],
                layer=LAYER,
                driver="GPKG",
                geometry_type="Polygon",
                crs=self.crs,
                append=self._created,
            )
        self._created = True

    def close(self) -> None:
        if not self._created:
            self.write(FeatureBatch.empty())  # an empty layer with its fields: an answer too


def geo_metadata(crs_wkt: str | None) -> dict[str, Any]:
    """GeoParquet's ``geo`` metadata for a WKB ``geometry`` column of polygons."""
    crs = None if crs_wkt is None else CRS.from_wkt(crs_wkt).to_json_dict()
    return {
        "version": GEOPARQUET_VERSION,
        "primary_column": "geometry",
        "columns": {
            "geometry": {"encoding": "WKB", "geometry_types": ["Polygon"], "crs": crs},
        },
    }


class GeoParquetWriter:
    """Writes batches of features as row groups of one GeoParquet file."""

    def __init__(self, path: str, crs_wkt: str | None) -> None:
        fields = [pa.field(name, kind) for name, _, kind in FIELDS]
        fields.append(pa.field("geometry", pa.binary()))
        self.schema = pa.schema(fields, metadata={b"geo": json.dumps(geo_metadata(crs_wkt))})
        self._writer = pq.ParquetWriter(path, self.schema)

    def write(self, batch: FeatureBatch) -> None:
        if not len(batch):
            return
        columns: dict[str, Any] = {}
        for name, _, kind in FIELDS:
            values = getattr(batch, name)
            # NaN areas (no CRS, no GSD) are nulls in Parquet, as in the GeoPackage.
            mask = np.isnan(values) if kind == pa.float64() else None
            columns[name] = pa.array(values, type=kind, mask=mask)
        columns["geometry"] = pa.array(list(batch.wkb), type=pa.binary())
        self._writer.write_table(pa.table(columns, schema=self.schema))

    def close(self) -> None:
        self._writer.close()


def open_writer(fmt: str, path: str, crs_wkt: str | None) -> VectorWriter:
    """A writer of ``fmt`` (``gpkg`` | ``parquet``) creating the local file ``path``."""
    if fmt == "gpkg":
        return GeoPackageWriter(path, crs_wkt)
    if fmt == "parquet":
        return GeoParquetWriter(path, crs_wkt)
    raise ValueError(f"vector format must be one of {', '.join(VECTOR_FORMATS)}, got {fmt!r}")
