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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio.raw
from pyproj import CRS

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
class Feature:
    """One polygon: WKB geometry in the raster's CRS and its attributes."""

    wkb: bytes
    class_id: int
    class_name: str
    pixels: int
    area_m2: float | None

    @property
    def area_ha(self) -> float | None:
        return None if self.area_m2 is None else self.area_m2 / 10_000.0


class VectorWriter(Protocol):
    def write(self, features: Sequence[Feature]) -> None: ...

    def close(self) -> None: ...


def _column(features: Sequence[Feature], name: str, dtype: str) -> np.ndarray:
    values = [getattr(f, name) for f in features]
    if dtype == "float64":
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=dtype)


class GeoPackageWriter:
    """Appends batches of features to one layer of a local GeoPackage."""

    def __init__(self, path: str, crs_wkt: str | None) -> None:
        self.path, self.crs = path, crs_wkt
        self._created = False

    def write(self, features: Sequence[Feature]) -> None:
        if not features and self._created:
            return
        with warnings.catch_warnings():
            # A raster without a CRS gives polygons without one, on purpose (pixel coordinates).
            warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
            self._write(features)
        self._created = True

    def _write(self, features: Sequence[Feature]) -> None:
        pyogrio.raw.write(
            self.path,
            np.array([f.wkb for f in features], dtype=object),
            [_column(features, name, dtype) for name, dtype, _ in FIELDS],
            [name for name, _, _ in FIELDS],
            layer=LAYER,
            driver="GPKG",
            geometry_type="Polygon",
            crs=self.crs,
            append=self._created,
        )

    def close(self) -> None:
        if not self._created:
            self.write([])  # an empty layer with its fields: "no polygons" is an answer too


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

    def write(self, features: Sequence[Feature]) -> None:
        if not features:
            return
        columns: dict[str, Any] = {
            name: [getattr(f, name) for f in features] for name, _, _ in FIELDS
        }
        columns["geometry"] = [f.wkb for f in features]
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
