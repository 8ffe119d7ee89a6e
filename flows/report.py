"""Markdown for the Prefect artifacts (and the ``report.md`` files beside them). Pure functions.

Links point where a person can open the file: ``file://`` for local paths, the Cloud Console's
authenticated URL for ``gs://`` objects.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES

MAX_PICTURES = 12


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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def metrics_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Per-class IoU and Dice, two columns per architecture (from ``results[arch]['metrics']``)."""
    archs = list(results)
    header = ["class"] + [f"{arch} {m}" for arch in archs for m in ("IoU", "Dice")]
    rows = []
    for c in ACTIVE_CLASSES:
        name = CLASS_NAMES[c]
        row = [name]
        for arch in archs:
            metrics = results[arch].get("metrics") or {}
            row.append(number((metrics.get("per_class_iou") or {}).get(name)))
            row.append(number((metrics.get("per_class_dice") or {}).get(name)))
        rows.append(row)
    for key, label in (("miou", "**mIoU**"), ("pixel_accuracy", "pixel accuracy")):
        row = [label]
        for arch in archs:
            metrics = results[arch].get("metrics") or {}
            row += [number(metrics.get(key)), ""]
        rows.append(row)
    return _table(header, rows)


def training_report(
    run: str,
    dataset: str,
    results: Mapping[str, Mapping[str, Any]],
    promotion: Mapping[str, Any],
) -> str:
    """The ``train`` flow's artifact: metrics per class and architecture, decision, pictures.

    ``results[arch]`` holds ``metrics`` (evaluate's dict), ``training`` (a few metadata fields),
    ``model_uri``, ``report_uri`` and ``pictures`` (URIs of PNGs).
    """
    parts = [
        f"# Training run `{run}`",
        f"Dataset `{dataset}`; scores are over the full validation scenes "
        "(DeepGlobe mIoU: 6 classes, unknown ignored).",
        "## Per-class IoU and Dice on validation scenes",
        metrics_table(results),
        "## Models",
        _table(
            [
                "architecture",
                "val mIoU (scenes)",
                "val mIoU (training)",
                "epochs",
                "train s",
                "model",
            ],
            [
                [
                    arch,
                    number((r.get("metrics") or {}).get("miou")),
                    number((r.get("training") or {}).get("val_miou")),
                    str((r.get("training") or {}).get("epochs", "–")),
                    number((r.get("training") or {}).get("wall_time_s"), 0),
                    f"[{r.get('model_uri', '')}]({link(str(r.get('model_uri', '')))})",
                ]
                for arch, r in results.items()
            ],
        ),
        "## Promotion",
        promotion_text(promotion),
        "## Pictures",
    ]
    for arch, r in results.items():
        pictures = list(r.get("pictures") or [])
        parts.append(f"**{arch}** ([report folder]({link(str(r.get('report_uri', '')))}))")
        parts += [f"- [{os.path.basename(p)}]({link(p)})" for p in pictures[:MAX_PICTURES]]
        if len(pictures) > MAX_PICTURES:
            parts.append(f"- … and {len(pictures) - MAX_PICTURES} more in the report folder")
    return "\n\n".join(parts) + "\n"


def promotion_text(promotion: Mapping[str, Any]) -> str:
    best = promotion.get("candidate") or {}
    score = number(best.get("val_miou"))
    baseline = promotion.get("baseline_score")
    against = (
        "no model was promoted before"
        if promotion.get("previous") is None
        else f"the promoted `{promotion['previous']}` scores {number(baseline)} on the same scenes"
    )
    if promotion.get("promoted"):
        return f"**Promoted** `{best.get('model_version')}` (val mIoU {score}): {against}."
    if not best:
        return "No candidate could be scored; nothing was promoted."
    return f"**Not promoted**: best candidate `{best.get('model_version')}` ({score}); {against}."


def inference_report(summary: Mapping[str, Any]) -> str:
    """The ``nightly-inference`` flow's artifact: what was predicted where."""
    rows = [
        [key.replace("_", " "), str(summary.get(key, "–"))]
        for key in ("model_version", "scenes", "already_done", "predicted", "skipped", "failed")
    ]
    output = str(summary.get("output", ""))
    return (
        "# Batch inference\n\n"
        + _table(["", ""], rows)
        + f"\n\nMasks: [{output}]({link(output)})\n"
    )
