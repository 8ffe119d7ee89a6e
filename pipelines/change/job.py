"""Change between two dates: pairs of class maps → change COGs, matrices and a run table.

``run_change`` pairs the maps of two prediction folders (:func:`pipelines.answers.change.
pair_maps`: by id, else by footprint) or takes explicit pairs (the nightly flow's "previous
map of the same footprint"), runs :class:`ChangePairs` on Beam, then writes the run's table
from the pairs' JSON records::

    <output>/{pair}_change.tif     from→to codes, colour table, transition names (COG)
    <output>/{pair}_change.json    the matrix in pixels and ha, transitions largest first
    <output>/change_summary.parquet + .csv    one row per pair and non-zero transition
    <output>/summary.json          counts, unpaired maps, the largest changes in words
    <output>/errors/change-*.jsonl a pair whose maps cannot be read or aligned

Bad pairs never stop the job; a missing folder is an error before Beam starts.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import apache_beam as beam

from pipelines.answers.change import (
    MATRIX_SUFFIX,
    ScenePair,
    pair_maps,
    summary_lines,
    summary_rows,
)
from pipelines.answers.classmap import find_class_maps
from pipelines.answers.tables import CHANGE_SCHEMA, write_table
from pipelines.change.transforms import STAGE, ChangePairs
from pipelines.core.errors import ERRORS_DIR
from pipelines.io import storage
from pipelines.io.beam_runtime import create_pipeline, pipeline_options

SUMMARY_TABLE = "change_summary"
SUMMARY_JSON = "summary.json"


def _records(output_uri: str, pairs: Sequence[ScenePair]) -> list[dict[str, Any]]:
    """The JSON record of each pair that was written (failed pairs have none)."""
    found = []
    for pair in pairs:
        uri = storage.join(output_uri, f"{pair.pair_id}{MATRIX_SUFFIX}")
        if storage.exists(uri):
            found.append(json.loads(storage.read_text(uri)))
    return found


def run_change(
    before_uri: str | None,
    after_uri: str | None,
    output_uri: str,
    *,
    pairs: Sequence[ScenePair] | None = None,
    gsd_m: float | None = None,
    beam_args: Sequence[str] = (),
) -> dict[str, Any]:
    """Change maps and matrices for the pairs of two folders (or ``pairs``); the summary.

    ``before_uri``/``after_uri``: predictions folders (or single maps), paired by id then by
    footprint; ignored when ``pairs`` is given.
    """
    started = time.perf_counter()
    notes: list[str] = []
    if pairs is None:
        if before_uri is None or after_uri is None:
            raise ValueError("give --before and --after, or explicit pairs")
        pairs, notes = pair_maps(find_class_maps(before_uri), find_class_maps(after_uri))
    pairs = list(pairs)
    tag = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    errors_prefix = storage.join(output_uri, ERRORS_DIR, f"{STAGE}-{tag}")
    if pairs:
        pipeline = create_pipeline(pipeline_options(beam_args))
        results = (
            pipeline | "Pairs" >> beam.Create(pairs) | "Change" >> ChangePairs(output_uri, gsd_m)
        )
        _ = results["errors"] | "WriteErrors" >> beam.io.WriteToText(
            errors_prefix, file_name_suffix=".jsonl", shard_name_template="", skip_if_empty=True
        )
        pipeline.run().wait_until_finish()
    records = _records(output_uri, pairs)
    rows = [row for record in records for row in summary_rows(record)]
    table = write_table(
        rows,
        CHANGE_SCHEMA,
        storage.join(output_uri, f"{SUMMARY_TABLE}.parquet"),
        storage.join(output_uri, f"{SUMMARY_TABLE}.csv"),
    )
    summary = {
        "pairs": len(pairs),
        "written": len(records),
        "failed": len(pairs) - len(records),
        "output": output_uri,
        "table": list(table),
        "unpaired": notes,
        "changes": summary_lines(records),
        "errors": [f"{errors_prefix}.jsonl"] if len(records) < len(pairs) else [],
        "wall_s": round(time.perf_counter() - started, 3),
    }
    storage.write_text(storage.join(output_uri, SUMMARY_JSON), json.dumps(summary, indent=1))
    return summary
