"""Markdown pieces for the Prefect artifacts (and the ``report.md`` files beside them). Pure.

The training report is assembled in :mod:`flows.training.report`; the inference report here.

Links point where a person can open the file: ``file://`` for local paths, the Cloud Console's
authenticated URL for ``gs://`` objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any


def link(uri: str) -> str:
    """A URL for ``uri`` that a browser can open."""
    if uri.startswith("gs://"):
        return "https://storage.cloud.google.com/" + uri[len("gs://") :]
    if "://" in uri:
        return uri
    return "file://" + os.path.abspath(uri)


def number(value: Any, digits: int = 3) -> str:
    """A metric cell: fixed digits, ``–`` where undefined (NaN/None: class absent)."""
    if value is None:
        return "–"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if value != value:  # NaN
        return "–"
    return f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def inference_report(summary: Mapping[str, Any]) -> str:
    """The ``nightly-inference`` flow's artifact: what was predicted where."""
    rows = [
        [key.replace("_", " "), str(summary.get(key, "–"))]
        for key in ("model_version", "scenes", "already_done", "predicted", "skipped", "failed")
    ]
    output = str(summary.get("output", ""))
    return (
        "# Batch inference\n\n" + table(["", ""], rows) + f"\n\nMasks: [{output}]({link(output)})\n"
    )
