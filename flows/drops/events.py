"""The one event this project reacts to: ``landcover.imagery.dropped``, and what a "drop" is.

A **drop** is a folder-like prefix (``gs://bucket/drops/2024-06-01/`` or a local folder) that a
producer fills with scene files and then *closes* by writing the marker object
:data:`DROP_MARKER` (``_DONE``) last. Only the marker makes a drop complete, so one drop gives
exactly one event however many files it holds, and a half-uploaded drop never starts work. Both
event sources apply this same rule: the GCS bridge (``flows/drops/gcs_bridge.py``: an
OBJECT_FINALIZE notification whose object is named ``_DONE``) and the local drop-folder watcher
(``flows/drops/watcher.py``: a ``_DONE`` file appearing in a sub-folder).

The event names the drop as a resource: id ``landcover.drop.<bucket>/<prefix>`` with the labels
``landcover.bucket`` and ``landcover.prefix``, which the ``imagery-drop`` deployment's trigger
templates into the flow's ``bucket`` and ``prefix`` parameters. For a local folder the "bucket"
is the absolute path of the folder that holds the drops (a GCS bucket name never contains
``/``, so :func:`drop_uri` can tell the two apart).

This module only builds plain values; it imports nothing from Prefect (only the pure
:mod:`pipelines.core.uris`), so the watcher, the
bridge, the deployments and the tests share one definition without import cost.
"""

from __future__ import annotations

import uuid
from typing import Any

from pipelines.core.uris import confine, normalize_name

DROP_EVENT = "landcover.imagery.dropped"
RESOURCE_PREFIX = "landcover.drop."
BUCKET_LABEL = "landcover.bucket"
PREFIX_LABEL = "landcover.prefix"
DROP_MARKER = "_DONE"
# Stable ids for events that describe the same object, so a redelivered notification is the
# same event (Pub/Sub delivers at least once).
EVENT_NAMESPACE = uuid.UUID("6f1c2f7e-3b7a-4d44-9a57-0d2f1c5b8e10")


def _clean_prefix(prefix: str) -> str:
    return prefix.strip("/")


def drop_resource(bucket: str, prefix: str) -> dict[str, str]:
    """The event's primary resource for the drop at ``bucket`` / ``prefix``."""
    prefix = _clean_prefix(prefix)
    bucket = bucket.rstrip("/") if bucket != "/" else bucket
    return {
        "prefect.resource.id": f"{RESOURCE_PREFIX}{bucket}/{prefix}",
        "prefect.resource.name": prefix.rsplit("/", 1)[-1] or bucket,
        BUCKET_LABEL: bucket,
        PREFIX_LABEL: prefix,
    }


def drop_event(
    bucket: str,
    prefix: str,
    *,
    payload: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``prefect.events.emit_event`` announcing one completed drop."""
    event: dict[str, Any] = {
        "event": DROP_EVENT,
        "resource": drop_resource(bucket, prefix),
        "payload": {"uri": drop_uri(bucket, prefix), **(payload or {})},
    }
    if event_id is not None:
        event["id"] = event_id
    return event


def stable_event_id(key: str) -> uuid.UUID:
    """The same id for the same completion key (e.g. ``gs://b/p/_DONE#generation``)."""
    return uuid.uuid5(EVENT_NAMESPACE, key)


def drop_uri(bucket: str, prefix: str) -> str:
    """Where the drop's files are: ``gs://bucket/prefix`` or ``<local folder>/prefix``."""
    prefix = _clean_prefix(prefix)
    if "://" in bucket:
        base = bucket.rstrip("/")
    elif "/" in bucket or bucket.startswith("."):
        base = bucket.rstrip("/") or "/"
    else:
        if not bucket:
            raise ValueError("a drop needs a bucket (GCS bucket name or local folder path)")
        base = f"gs://{bucket}"
    return f"{base}/{prefix}" if prefix else base


def checked_drop_uri(bucket: str, prefix: str) -> str:
    """:func:`drop_uri`, refusing a prefix that is not one safe relative name under ``bucket``.

    The prefix comes from outside (a notification, an event, a flow parameter): ``..``,
    absolute paths, other buckets or schemes, glob characters and Unicode look-alikes are
    refused (:func:`pipelines.core.uris.normalize_name`), and so is an empty prefix (the whole
    bucket or drops folder is not one drop).
    """
    cleaned = _clean_prefix(prefix)
    if not cleaned:
        raise ValueError("empty drop prefix: a drop is a sub-folder / prefix, not the whole root")
    try:
        name = normalize_name(cleaned)
    except ValueError as error:
        raise ValueError(f"refused drop prefix: {error}") from error
    base = drop_uri(bucket, "")
    return confine(base, name)


def drop_trigger() -> dict[str, Any]:
    """The ``imagery-drop`` deployment's trigger, as plain data.

    ``flows/deployments.py`` turns it into a ``DeploymentEventTrigger`` and ``infra/prefect.yaml``
    spells out the same fields (a test compares the two). ``for_each`` on the resource id makes
    each drop its own trigger bucket, so two drops arriving together start two runs.
    """
    return {
        "type": "event",
        "enabled": True,
        "name": "landcover-imagery-dropped",
        "match": {"prefect.resource.id": f"{RESOURCE_PREFIX}*"},
        "expect": [DROP_EVENT],
        "for_each": ["prefect.resource.id"],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
        "parameters": {
            "bucket": "{{ event.resource['" + BUCKET_LABEL + "'] }}",
            "prefix": "{{ event.resource['" + PREFIX_LABEL + "'] }}",
        },
    }
