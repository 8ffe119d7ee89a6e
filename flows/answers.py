"""After nightly inference: the run's area table as an artifact, and change since the last map.

:func:`after_inference` is what ``nightly-inference`` calls once batch inference has written a
predictions folder (inside its lock on that folder):

1. the run's stats table (``stats/<run>.parquet``, one row per scene and class) is published
   as the Prefect table artifact ``landcover-area-stats``;
2. every scene predicted by this run whose footprint overlaps an earlier map in the same
   folder's STAC catalog (:func:`pipelines.answers.change.pairs_with_previous`: the latest
   earlier Item of another input) is paired with it, and the ``change-detection`` flow runs
   the change job on those pairs into ``<root>/changes/<model version>/<run>/``, publishing
   its summary ("forest → urban: 12.4 ha") as the markdown artifact ``landcover-change``.

With nothing new or nothing earlier of the same place, there is no change run: that is not an
error. Heavy modules (pyarrow, Beam) are imported inside the tasks.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import tasks
from flows.layout import Layout, new_run_id
from flows.retries import storage_retry_options

STATS_ARTIFACT_KEY = "landcover-area-stats"
CHANGE_ARTIFACT_KEY = "landcover-change"
# Columns of the stats table shown in the artifact (the Parquet/CSV files have them all).
ARTIFACT_COLUMNS = ("scene_id", "class_name", "pixels", "area_ha", "share", "area_method")
_IO = {**storage_retry_options(), "cache_policy": NO_CACHE}


@task(name="publish-area-stats", **_IO)
def publish_stats(table_uri: str, run: str) -> int:
    """The run's stats table as a table artifact (non-zero classes); the rows published."""
    from pipelines.answers.tables import read_parquet

    rows = [
        {k: row[k] for k in ARTIFACT_COLUMNS}
        for row in read_parquet(table_uri).to_pylist()
        if row["pixels"]
    ]
    for row in rows:
        for key in ("area_ha", "share"):
            if row[key] is not None:
                row[key] = round(float(row[key]), 4)
    create_table_artifact(
        table=rows,
        key=STATS_ARTIFACT_KEY,
        description=f"class areas of the scenes of inference run {run}: {table_uri}",
    )
    return len(rows)


@task(name="pair-with-previous-maps", **_IO)
def previous_map_pairs(output: str, predicted_ids: list[str]) -> list[dict[str, str]]:
    """Pairs (as dicts, Prefect parameters) of each new scene with its previous map."""
    from pipelines.answers.change import pairs_with_previous

    return [pair.to_dict() for pair in pairs_with_previous(output, predicted_ids)]


@task(name="change", **_IO)
def change(pairs: list[dict[str, str]], output: str, beam_args: list[str]) -> dict[str, Any]:
    """The change job (``pipelines.change.job.run_change``) on explicit pairs."""
    from pipelines.answers.change import ScenePair
    from pipelines.change.job import run_change

    chosen = [ScenePair.from_dict(p) for p in pairs]
    return run_change(None, None, output, pairs=chosen, beam_args=beam_args)


def change_report(summary: dict[str, Any]) -> str:
    """Markdown of a change run: its pairs and the largest changes in words."""
    lines = [
        "# Land-cover change",
        "",
        f"{summary['written']} of {summary['pairs']} pair(s) compared → `{summary['output']}`",
        "",
    ]
    lines += [f"- {line}" for line in summary["changes"]] or ["- no change"]
    if summary["failed"]:
        lines += ["", f"{summary['failed']} pair(s) failed: see {', '.join(summary['errors'])}"]
    lines += ["", f"Table: `{summary['table'][0]}` and `{summary['table'][1]}`"]
    return "\n".join(lines) + "\n"


@flow(name="change-detection", log_prints=True)
def change_detection(
    root: str,
    model_version: str,
    pairs: list[dict[str, str]],
    beam_args: list[str] | None = None,
) -> dict[str, Any]:
    """Change maps and from→to hectares for ``pairs`` (before/after class maps of one place)."""
    logger = get_run_logger()
    output = Layout(root).changes(model_version, new_run_id())
    summary = change(pairs, output, tasks.resolve_beam_args(beam_args))
    for line in summary["changes"]:
        logger.info("change %s", line)
    create_markdown_artifact(markdown=change_report(summary), key=CHANGE_ARTIFACT_KEY)
    return summary


def after_inference(
    layout: Layout, model_version: str, counts: dict[str, Any], beam_args: list[str] | None
) -> dict[str, Any]:
    """The area artifact and, when there are earlier maps of the same places, a change run."""
    logger = get_run_logger()
    result: dict[str, Any] = {"stats_rows": 0, "change": None}
    table = counts.get("stats_table") or []
    if table:
        result["stats_rows"] = publish_stats(table[0], str(counts.get("output")))
    new = list(counts.get("predicted_ids") or [])
    if not new:
        return result
    pairs = previous_map_pairs(layout.predictions(model_version), new)
    if not pairs:
        logger.info("no earlier map of the %d new scene(s)' footprints: no change run", len(new))
        return result
    logger.info("%d new scene(s) overlap earlier maps: running change detection", len(pairs))
    result["change"] = change_detection(
        root=layout.root, model_version=model_version, pairs=pairs, beam_args=beam_args
    )
    return result
