"""The ``imagery-drop`` flow: unpack one completed drop and start the work it calls for.

A drop (see :mod:`flows.events`) is a prefix closed by a ``_DONE`` marker. The flow:

1. lists the drop and sorts its files (:func:`plan_drop`): labeled pairs
   (``{id}_sat.jpg`` + ``{id}_mask.png``), unlabeled scenes (``{id}_sat.jpg|png|tif``), and
   everything else (a mask without its image, other names), which is invalid;
2. decodes every scene file, so corrupt or truncated files and image/mask size mismatches are
   caught here, before they reach training;
3. moves labeled pairs into ``<root>/raw/``, unlabeled scenes into ``<root>/incoming/``, and
   invalid files into ``<root>/rejected/<drop>/`` with an ``errors.jsonl`` saying why (the
   dead-letter format of every stage): nothing is lost, nothing bad goes further;
4. writes a receipt ``_PROCESSED.json`` into the drop and removes its marker;
5. new labeled scenes → retraining: a run of the ``train`` deployment when it exists, else the
   ``train`` flow as a subflow; or, with ``retrain=False``, an entry in
   ``<root>/state/retrain-due.json`` for a later (scheduled or manual) training run;
6. new unlabeled scenes → the ``nightly-inference`` flow now, with the promoted model.

Re-running the flow on a drop that was already handled finds nothing left to move and does
nothing, so an event delivered twice is harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.events import DROP_MARKER, RECEIPT_NAME, drop_uri
from flows.layout import Layout, safe_name
from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import LABELED_IMAGE_SUFFIX, basename, mask_id_of, scene_id_of
from pipelines.io import storage

STAGE = "imagery-drop"
TRAIN_DEPLOYMENT = "train/landcover"
ERRORS_NAME = "errors.jsonl"


@dataclass
class DropPlan:
    """What a drop holds, by file name alone (before anything is decoded)."""

    pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (id, image, mask)
    images: list[tuple[str, str]] = field(default_factory=list)  # (id, image)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (uri, reason)


def plan_drop(uris: Sequence[str]) -> DropPlan:
    """Sort a drop's files into labeled pairs, unlabeled images and invalid files."""
    plan = DropPlan()
    images: dict[str, str] = {}
    masks: dict[str, str] = {}
    for uri in sorted(uris):
        name = basename(uri)
        if name in (DROP_MARKER, RECEIPT_NAME):
            continue
        scene_id, mask_id = scene_id_of(name), mask_id_of(name)
        if scene_id:
            if scene_id in images:
                plan.invalid.append((uri, f"second image for scene {scene_id}"))
            else:
                images[scene_id] = uri
        elif mask_id:
            masks[mask_id] = uri
        else:
            plan.invalid.append(
                (uri, "not a scene file: expected {id}_sat.jpg (+ {id}_mask.png when labeled)")
            )
    for scene_id, mask in sorted(masks.items()):
        image = images.pop(scene_id, None)
        if image is None:
            plan.invalid.append((mask, "mask without image"))
        elif not image.endswith(LABELED_IMAGE_SUFFIX):
            plan.invalid += [
                (image, f"labeled scenes need a {LABELED_IMAGE_SUFFIX} image"),
                (mask, f"its image is not {LABELED_IMAGE_SUFFIX}"),
            ]
        else:
            plan.pairs.append((scene_id, image, mask))
    plan.images = sorted(images.items())
    return plan


def error_lines(rejected: Sequence[tuple[str, str, str]]) -> str:
    """``errors.jsonl`` for (original uri, new uri, reason) rows, in the stages' format."""
    lines = []
    for original, moved_to, reason in rejected:
        record = ErrorRecord(
            uri=moved_to,
            reason=f"{reason} (dropped as {original})",
            stage=STAGE,
            scene_id=scene_id_of(original) or mask_id_of(original) or "",
        )
        lines.append(record.to_json())
    return "\n".join(lines) + ("\n" if lines else "")


def deployment_exists(name: str) -> bool:
    """Whether the Prefect API knows the deployment ``flow-name/deployment-name``."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(name)
    except ObjectNotFound:
        return False
    return True


def request_training(
    root: str,
    drop_id: str,
    new_scenes: int,
    *,
    retrain: bool,
    train_deployment: str | None,
    train_parameters: dict[str, Any],
) -> dict[str, Any]:
    """Start (or schedule) retraining after new labeled scenes arrived."""
    logger = get_run_logger()
    layout = Layout(root)
    if not retrain:
        state = tasks.read_json(layout.retrain_due) or {}
        due = list(state.get("due") or [])
        due.append(
            {
                "drop": drop_id,
                "scenes": new_scenes,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
        tasks.write_json(layout.retrain_due, {"due": due})
        logger.info(
            "retraining due (%d drops waiting): recorded in %s", len(due), layout.retrain_due
        )
        return {"action": "recorded", "state": layout.retrain_due, "drops_waiting": len(due)}
    parameters = {**train_parameters, "root": root}
    if train_deployment and deployment_exists(train_deployment):
        run_id = tasks.start_deployment(train_deployment, parameters)
        logger.info("started a %s run: %s", train_deployment, run_id)
        return {"action": "deployment", "deployment": train_deployment, "flow_run_id": run_id}
    from flows.train import train

    logger.info("no %s deployment: training here as a subflow", train_deployment)
    result = train(**parameters)
    return {"action": "subflow", "run": result["run"], "promoted": result["promoted"]}


@flow(name="imagery-drop", flow_run_name="drop-{prefix}", log_prints=True)
def imagery_drop(
    bucket: str,
    prefix: str,
    root: str,
    retrain: bool = True,
    train_deployment: str | None = TRAIN_DEPLOYMENT,
    train_parameters: dict[str, Any] | None = None,
    predict: bool = True,
) -> dict[str, Any]:
    """Validate and unpack the drop at ``bucket``/``prefix``; retrain and/or predict.

    ``bucket`` is a GCS bucket name or, for the local drop folder, its absolute path.
    ``train_parameters`` are the ``train`` flow's (``root`` aside), e.g.
    ``{"training": {"epochs": 20}}``.
    """
    logger = get_run_logger()
    layout = Layout(root)
    source = drop_uri(bucket, prefix)
    drop_id = safe_name(prefix)
    names = [name for name, _ in tasks.list_files(source)]
    plan = plan_drop([storage.join(source, name) for name in names])
    logger.info(
        "drop %s: %d labeled pairs, %d unlabeled scenes, %d invalid files",
        source,
        len(plan.pairs),
        len(plan.images),
        len(plan.invalid),
    )
    checked = tasks.validate_scenes(plan.pairs, plan.images)
    invalid = plan.invalid + [tuple(e) for e in checked["errors"]]

    moves = [
        (uri, storage.join(layout.raw, basename(uri)))
        for _, image, mask in checked["pairs"]
        for uri in (image, mask)
    ]
    moves += [(uri, storage.join(layout.incoming, basename(uri))) for _, uri in checked["images"]]
    rejected_dir = layout.rejected(drop_id)
    rejected = [(uri, storage.join(rejected_dir, basename(uri)), reason) for uri, reason in invalid]
    moves += [(uri, moved_to) for uri, moved_to, _ in rejected]
    tasks.move_files(moves)
    if rejected:
        tasks.write_text(storage.join(rejected_dir, ERRORS_NAME), error_lines(rejected))
        logger.warning(
            "%d invalid files moved to %s (reasons in %s)", len(rejected), rejected_dir, ERRORS_NAME
        )

    summary: dict[str, Any] = {
        "drop": source,
        "labeled": [scene_id for scene_id, _, _ in checked["pairs"]],
        "unlabeled": [scene_id for scene_id, _ in checked["images"]],
        "invalid": [{"uri": moved_to, "reason": reason} for _, moved_to, reason in rejected],
        "rejected_to": rejected_dir if rejected else None,
    }
    tasks.write_json(storage.join(source, RECEIPT_NAME), summary)
    tasks.delete_files([storage.join(source, DROP_MARKER)])

    if summary["labeled"]:
        summary["training"] = request_training(
            root,
            drop_id,
            len(summary["labeled"]),
            retrain=retrain,
            train_deployment=train_deployment,
            train_parameters=dict(train_parameters or {}),
        )
    if summary["unlabeled"] and predict:
        from flows.inference import nightly_inference

        summary["inference"] = nightly_inference(root=root)
    create_markdown_artifact(
        markdown=drop_report(summary), key="landcover-drop-report", description=source
    )
    return summary


def drop_report(summary: dict[str, Any]) -> str:
    lines = [
        f"# Imagery drop `{summary['drop']}`",
        "",
        f"- labeled pairs moved to raw/: **{len(summary['labeled'])}**",
        f"- unlabeled scenes moved to incoming/: **{len(summary['unlabeled'])}**",
        f"- invalid files: **{len(summary['invalid'])}**"
        + (f" (moved to `{summary['rejected_to']}`)" if summary["invalid"] else ""),
    ]
    lines += [f"  - `{e['uri']}`: {e['reason']}" for e in summary["invalid"]]
    if "training" in summary:
        lines.append(f"- training: {summary['training']['action']}")
    if "inference" in summary:
        inference = summary["inference"]
        lines.append(
            f"- inference: {inference.get('predicted', 0)} masks ({inference.get('status')})"
        )
    return "\n".join(lines) + "\n"
