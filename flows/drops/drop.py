"""The ``imagery-drop`` flow: unpack one completed drop and start the work it calls for.

A drop (see :mod:`flows.drops.events`) is a prefix closed by a ``_DONE`` marker. The flow:

1. lists the drop and sorts its files (:func:`flows.drops.plan.plan_drop`): labeled pairs
   (``{id}_sat.jpg`` + ``{id}_mask.png``), unlabeled scenes (``{id}_sat.jpg|png|tif``), and
   everything else (a mask without its image, other names), which is invalid;
2. decodes every scene file, so corrupt or truncated files and image/mask size mismatches are
   caught here, before they reach training;
3. moves labeled pairs into ``<root>/raw/``, unlabeled scenes into ``<root>/incoming/``, and
   invalid files into ``<root>/rejected/<drop>/`` with an ``errors.jsonl`` saying why (the
   dead-letter format of every stage): nothing is lost, nothing bad goes further;
4. merges the delivery into the drop's receipt in ``<root>/state/drops/<drop key>/`` and
   removes its marker;
5. new labeled scenes → retraining: a run of the ``train`` deployment when it exists, else the
   ``train`` flow as a subflow; or, with ``retrain=False``, an entry in
   ``<root>/state/retrain-due.json`` for a later (scheduled or manual) training run;
6. new unlabeled scenes → the ``nightly-inference`` flow now, with the promoted model.

Steps 1–4 (:mod:`flows.drops.unpack`) run under the root's drop lock, with every move verified,
journaled and re-checked against the drop's confinement (:mod:`flows.drops.confinement`), so a
crash at any point, a re-delivered event or two runs at once leave each file in exactly one
place and the receipt complete. The lock is a short lease renewed while the run lives, so the
next run (the watcher announces unfinished drops again when it starts, or a re-touched
``_DONE``) takes over a killed run's lock at once and finishes its journal. Everything inside
the drop is untrusted: the flow's own state is never read from it. Follow-ups (5, 6) are
recorded in the receipt once done, so a re-run repeats only what did not happen; a deployment
run is started with an idempotency key, so a retried trigger does not start a second one.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from flows import tasks
from flows.drops.events import checked_drop_uri
from flows.drops.receipt import Delivery, Receipt
from flows.drops.unpack import ERRORS_NAME, STAGE, DropPlace, read_receipt, unpack, write_receipt
from flows.layout import Layout, safe_name
from pipelines.core.errors import ErrorRecord
from pipelines.core.naming import mask_id_of, scene_id_of
from pipelines.io import locks, storage
from pipelines.io.integrity import resolved_same_or_inside

__all__ = ["ERRORS_NAME", "STAGE", "imagery_drop"]

TRAIN_DEPLOYMENT = "train/landcover"
# How long a second delivery for the same root waits for the first before giving up cleanly.
DROP_LOCK_WAIT_S = 1800.0


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


def record_due(layout: Layout, drop_id: str, deliveries: list[Delivery]) -> dict[str, Any]:
    """Add the deliveries to ``retrain-due.json`` once each (keyed by delivery id)."""
    state = tasks.read_json(layout.retrain_due) or {}
    due = list(state.get("due") or [])
    known = {entry.get("delivery") for entry in due}
    for delivery in deliveries:
        if delivery.delivery_id in known:
            continue
        due.append(
            {
                "drop": drop_id,
                "delivery": delivery.delivery_id,
                "scenes": len(delivery.labeled),
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
    tasks.write_json(layout.retrain_due, {**state, "due": due})
    return {"action": "recorded", "state": layout.retrain_due, "drops_waiting": len(due)}


def request_training(
    root: str,
    drop_id: str,
    deliveries: list[Delivery],
    *,
    retrain: bool,
    train_deployment: str | None,
    train_parameters: dict[str, Any],
) -> dict[str, Any]:
    """Start (or schedule) retraining after new labeled scenes arrived."""
    logger = get_run_logger()
    layout = Layout(root)
    if not retrain:
        result = record_due(layout, drop_id, deliveries)
        logger.info(
            "retraining due (%d drops waiting): recorded in %s",
            result["drops_waiting"],
            layout.retrain_due,
        )
        return result
    parameters = {**train_parameters, "root": root}
    if train_deployment and deployment_exists(train_deployment):
        key = "drop:" + ",".join(sorted(d.delivery_id for d in deliveries)) + f"@{root}"
        run_id = tasks.start_deployment(train_deployment, parameters, idempotency_key=key)
        logger.info("started a %s run: %s", train_deployment, run_id)
        return {"action": "deployment", "deployment": train_deployment, "flow_run_id": run_id}
    from flows.train import train

    logger.info("no %s deployment: training here as a subflow", train_deployment)
    result = train(**parameters)
    return {"action": "subflow", "run": result["run"], "promoted": result["promoted"]}


def check_drop_place(bucket: str, prefix: str, root: str) -> DropPlace:
    """The drop's location, refused when it escapes the drops folder or overlaps the root's data.

    A drop that is (or holds, or lies in) ``raw/``, ``incoming/``, ``rejected/``, ``models/``,
    ``predictions/``, ``records/`` or ``state/`` would have the flow move the root's own files:
    refused before anything is listed. Local paths are compared after resolving symlinks.
    """
    source = checked_drop_uri(bucket, prefix)
    base = checked_drop_uri(bucket, "x").rsplit("/", 1)[0]
    if not resolved_same_or_inside(source, base) or resolved_same_or_inside(base, source):
        raise ValueError(f"drop {source} resolves outside the drops folder {base}: refused")
    layout = Layout(root)
    guarded = [
        layout.raw,
        layout.incoming,
        storage.join(root, "rejected"),
        layout.models,
        storage.join(root, "predictions"),
        storage.join(root, "records"),
        layout.state,
    ]
    for folder in guarded:
        if resolved_same_or_inside(source, folder) or resolved_same_or_inside(folder, source):
            raise ValueError(f"drop {source} overlaps {folder}: refusing to move files there")
    tasks.check_credentials([source, root])
    return DropPlace(source=source, drop_id=safe_name(prefix), layout=layout)


def _follow_up(place: DropPlace, name: str, deliveries: list[Delivery], value: Any) -> None:
    for delivery in deliveries:
        delivery.follow_ups[name] = value
    write_receipt(place, deliveries)


@flow(name="imagery-drop", flow_run_name="drop-{prefix}", log_prints=True)
def imagery_drop(
    bucket: str,
    prefix: str,
    root: str,
    retrain: bool = True,
    train_deployment: str | None = TRAIN_DEPLOYMENT,
    train_parameters: dict[str, Any] | None = None,
    predict: bool = True,
    event_id: str | None = None,
    lock_wait_s: float = DROP_LOCK_WAIT_S,
) -> dict[str, Any]:
    """Validate and unpack the drop at ``bucket``/``prefix``; retrain and/or predict.

    ``bucket`` is a GCS bucket name or, for the local drop folder, its absolute path.
    ``train_parameters`` are the ``train`` flow's (``root`` aside), e.g.
    ``{"training": {"epochs": 20}}``. ``event_id`` (the triggering event's id) names the
    delivery in the receipt; without it the marker's generation does. A second run for the same
    root waits up to ``lock_wait_s`` for the first, then fails with the lock's holder named.
    """
    from prefect.runtime import flow_run

    logger = get_run_logger()
    place = check_drop_place(bucket, prefix, root)
    owner = f"imagery-drop {place.source} (flow run {flow_run.id or 'local'}, pid {os.getpid()})"
    with locks.lock(place.layout.drop_lock, owner, wait_s=lock_wait_s) as held:
        made = unpack(place, event_id, guard=held.check)
        receipt = read_receipt(place)
    summary = run_summary(place, made)
    logger.info(
        "drop %s: %d labeled scenes, %d unlabeled scenes, %d invalid files",
        place.source,
        len(summary["labeled"]),
        len(summary["unlabeled"]),
        len(summary["invalid"]),
    )
    summary.update(follow_ups(place, receipt, retrain, train_deployment, train_parameters, predict))
    create_markdown_artifact(
        markdown=drop_report(summary), key="landcover-drop-report", description=place.source
    )
    return summary


def run_summary(place: DropPlace, made: list[Delivery]) -> dict[str, Any]:
    """What this run moved (earlier deliveries are in the receipt)."""
    invalid = [{"uri": f["to"], "reason": f["reason"]} for d in made for f in d.rejected]
    return {
        "drop": place.source,
        "deliveries": [d.delivery_id for d in made],
        "labeled": sorted({s for d in made for s in d.labeled}),
        "unlabeled": sorted({s for d in made for s in d.unlabeled}),
        "invalid": invalid,
        "rejected_to": place.rejected_dir if invalid else None,
    }


def follow_ups(
    place: DropPlace,
    receipt: Receipt,
    retrain: bool,
    train_deployment: str | None,
    train_parameters: dict[str, Any] | None,
    predict: bool,
) -> dict[str, Any]:
    """Training and inference for every delivery that has not had them yet (a crash-safe
    re-run repeats only what is missing: each is recorded in the receipt once done)."""
    from flows.drops.receipt import pending_follow_up

    done: dict[str, Any] = {}
    root = place.layout.root
    to_train = pending_follow_up(receipt, "training", "raw")
    if to_train:
        done["training"] = request_training(
            root,
            place.drop_id,
            to_train,
            retrain=retrain,
            train_deployment=train_deployment,
            train_parameters=dict(train_parameters or {}),
        )
        _follow_up(place, "training", to_train, done["training"])
    to_predict = pending_follow_up(receipt, "inference", "incoming")
    if to_predict and predict:
        from flows.inference import nightly_inference

        done["inference"] = nightly_inference(root=root)
        _follow_up(place, "inference", to_predict, {"status": done["inference"].get("status")})
    elif to_predict:
        _follow_up(place, "inference", to_predict, {"status": "not requested (predict=False)"})
    return done


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
