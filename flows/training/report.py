"""Step 5 of the train flow: the run's report, as ``reports/<run>/report.md`` and an artifact.

One markdown text, written beside the run's metrics and pictures and published as the
``landcover-training-report`` artifact (the UI's Artifacts tab): per-class IoU and Dice of
each candidate on the val scenes, the models with their training figures, the promotion
decision, and links to the evaluator's pictures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from flows import tasks
from flows.report import link, number, table
from flows.training.candidates import Candidate
from flows.training.evaluation import Evaluation
from flows.training.promotion import Promotion
from pipelines.core.palette import ACTIVE_CLASSES, CLASS_NAMES
from pipelines.io import storage

ARTIFACT_KEY = "landcover-training-report"
REPORT_NAME = "report.md"
MAX_PICTURES = 12


def metrics_table(candidates: Sequence[Candidate], evaluation: Evaluation) -> str:
    """Per-class IoU and Dice, two columns per candidate (``–`` where not evaluated)."""
    header = ["class"] + [f"{c.arch} {m}" for c in candidates for m in ("IoU", "Dice")]
    metrics = {c.arch: (s.metrics if (s := evaluation.of(c.arch)) else {}) for c in candidates}
    rows = []
    for c in ACTIVE_CLASSES:
        name = CLASS_NAMES[c]
        row = [name]
        for candidate in candidates:
            found = metrics[candidate.arch]
            row.append(number((found.get("per_class_iou") or {}).get(name)))
            row.append(number((found.get("per_class_dice") or {}).get(name)))
        rows.append(row)
    for key, label in (("miou", "**mIoU**"), ("pixel_accuracy", "pixel accuracy")):
        row = [label]
        for candidate in candidates:
            row += [number(metrics[candidate.arch].get(key)), ""]
        rows.append(row)
    return table(header, rows)


def models_table(candidates: Sequence[Candidate], evaluation: Evaluation) -> str:
    header = ["architecture", "val mIoU (scenes)", "val mIoU (training)", "epochs", "train s"]
    rows = []
    for c in candidates:
        scored = evaluation.of(c.arch)
        rows.append(
            [
                c.arch,
                number(None if scored is None else scored.miou),
                number(c.training_val_miou),
                str(c.epochs),
                number(c.wall_time_s, 0),
                f"[{c.model_uri}]({link(c.model_uri)})",
            ]
        )
    return table([*header, "model"], rows)


def promotion_text(promotion: Promotion) -> str:
    best = promotion.candidate or {}
    score = number(best.get("val_miou"))
    against = (
        "no model was promoted before"
        if promotion.previous is None
        else f"the promoted `{promotion.previous}` scores {number(promotion.baseline_score)} "
        "on the same scenes"
    )
    if promotion.promoted:
        return f"**Promoted** `{best.get('model_version')}` (val mIoU {score}): {against}."
    if not best:
        return "No candidate could be scored; nothing was promoted."
    return f"**Not promoted**: best candidate `{best.get('model_version')}` ({score}); {against}."


def training_report(
    run: str, candidates: Sequence[Candidate], evaluation: Evaluation, promotion: Promotion
) -> str:
    """The run's markdown: metrics per class and candidate, models, decision, pictures."""
    parts = [
        f"# Training run `{run}`",
        f"Dataset `{evaluation.dataset}`; scores are over the full validation scenes "
        "(DeepGlobe mIoU: 6 classes, unknown ignored).",
        "## Per-class IoU and Dice on validation scenes",
        metrics_table(candidates, evaluation),
        "## Models",
        models_table(candidates, evaluation),
        "## Promotion",
        promotion_text(promotion),
        "## Pictures",
    ]
    for candidate in candidates:
        scored = evaluation.of(candidate.arch)
        pictures = list(scored.pictures) if scored else []
        folder = evaluation.report_uri(candidate.arch)
        parts.append(f"**{candidate.arch}** ([report folder]({link(folder)}))")
        parts += [f"- [{os.path.basename(p)}]({link(p)})" for p in pictures[:MAX_PICTURES]]
        if len(pictures) > MAX_PICTURES:
            parts.append(f"- … and {len(pictures) - MAX_PICTURES} more in the report folder")
    return "\n\n".join(parts) + "\n"


def publish_report(
    run: str, candidates: Sequence[Candidate], evaluation: Evaluation, promotion: Promotion
) -> str:
    """Write ``<report>/report.md`` and the run's artifact; the markdown."""
    from prefect.artifacts import create_markdown_artifact

    markdown = training_report(run, candidates, evaluation, promotion)
    tasks.write_text(storage.join(evaluation.report, REPORT_NAME), markdown)
    create_markdown_artifact(markdown=markdown, key=ARTIFACT_KEY, description=f"training run {run}")
    return markdown
