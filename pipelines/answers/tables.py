"""The run tables the answers write: one Parquet file and one CSV file with the same rows.

Each table has a fixed schema (names and Arrow types, defined here once), so an empty run
still writes a table with its columns, a column that is null for every row keeps its type, and
tables of different runs concatenate. Both files are written locally and published atomically
through the storage layer (local or ``gs://``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipelines.io import storage

STATS_SCHEMA = pa.schema(
    [
        ("scene_id", pa.string()),
        ("class_id", pa.int16()),
        ("class_name", pa.string()),
        ("pixels", pa.int64()),
        ("share", pa.float64()),
        ("area_m2", pa.float64()),
        ("area_ha", pa.float64()),
        ("area_method", pa.string()),
        ("area_source", pa.string()),
        ("crs", pa.string()),
        ("nodata_pixels", pa.int64()),
        ("class_map", pa.string()),
        ("model_version", pa.string()),
    ]
)
CHANGE_SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("before", pa.string()),
        ("after", pa.string()),
        ("from_class", pa.string()),
        ("to_class", pa.string()),
        ("from_id", pa.int16()),
        ("to_id", pa.int16()),
        ("pixels", pa.int64()),
        ("area_m2", pa.float64()),
        ("area_ha", pa.float64()),
        ("area_method", pa.string()),
        ("matched_by", pa.string()),
    ]
)


def to_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as an Arrow table of ``schema``; keys outside it are an error."""
    names = set(schema.names)
    for row in rows:
        unknown = sorted(set(row) - names)
        if unknown:
            raise ValueError(f"columns {unknown} are not in the table schema")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


def write_table(
    rows: Sequence[Mapping[str, Any]], schema: pa.Schema, parquet_uri: str, csv_uri: str
) -> tuple[str, str]:
    """Write ``rows`` to ``parquet_uri`` and ``csv_uri``; returns the two URIs."""
    table = to_table(rows, schema)
    with tempfile.TemporaryDirectory(prefix="landcover-table-") as tmp:
        parquet_path = os.path.join(tmp, "table.parquet")
        csv_path = os.path.join(tmp, "table.csv")
        pq.write_table(table, parquet_path)
        pa_csv.write_csv(table, csv_path)
        storage.upload_file(parquet_path, parquet_uri)
        storage.upload_file(csv_path, csv_uri)
    return parquet_uri, csv_uri


def read_parquet(uri: str) -> pa.Table:
    """A table written by :func:`write_table` (tests, the flows' artifacts)."""
    with storage.local_copy(uri) as path:
        return pq.read_table(path)
