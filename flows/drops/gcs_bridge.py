"""GCS → Prefect: turn bucket notifications (via Pub/Sub) into ``landcover.imagery.dropped``.

Set-up (``infra/gcs/notifications.sh``): the bucket publishes an ``OBJECT_FINALIZE``
notification (JSON payload) for every object written under the drops prefix to a Pub/Sub topic;
this bridge pulls a subscription of that topic and emits one Prefect event per **completed
drop**: only the notification for a ``_DONE`` marker object counts
(:mod:`flows.drops.events`), every other object's notification is acknowledged and ignored.
So a drop of 500 scenes gives one event, and the event never arrives before the drop's last
scene.

Pub/Sub delivers at least once. The event id is derived from the marker's bucket, name and
generation, so a redelivered notification produces the same event id, and the ``imagery-drop``
flow is idempotent besides (a handled drop has nothing left to move).

Run it next to the Prefect server (or anywhere that reaches its API)::

    PREFECT_API_URL=https://prefect.example/api \\
    python -m flows.drops.gcs_bridge --subscription projects/P/subscriptions/landcover-drops \\
        [--prefix drops/]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from flows.drops.events import DROP_MARKER, drop_event, stable_event_id

FINALIZE = "OBJECT_FINALIZE"
logger = logging.getLogger("landcover.gcs_bridge")


class Message(Protocol):
    """The part of ``google.cloud.pubsub_v1.subscriber.message.Message`` the bridge uses."""

    data: bytes
    attributes: Mapping[str, str]

    def ack(self) -> None: ...

    def nack(self) -> None: ...


def notification_to_event(
    attributes: Mapping[str, str], data: bytes, *, watch_prefix: str = ""
) -> dict[str, Any] | None:
    """A GCS Pub/Sub notification → ``emit_event`` kwargs, or ``None`` when it is not a drop.

    ``attributes`` carry ``eventType``, ``bucketId``, ``objectId``, ``objectGeneration``;
    ``data`` is the object resource as JSON (``payload-format=json``). A drop completes when an
    object named ``_DONE`` is finalized; its folder is the drop's prefix.
    """
    if attributes.get("eventType") != FINALIZE:
        return None
    try:
        resource = json.loads(data.decode("utf-8")) if data else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        resource = {}
    bucket = resource.get("bucket") or attributes.get("bucketId")
    name = resource.get("name") or attributes.get("objectId")
    if not bucket or not name:
        return None
    folder, _, base = name.rpartition("/")
    if base != DROP_MARKER or not folder:
        return None
    if watch_prefix and not (folder + "/").startswith(watch_prefix.strip("/") + "/"):
        return None
    generation = resource.get("generation") or attributes.get("objectGeneration") or ""
    marker = f"gs://{bucket}/{name}"
    return drop_event(
        bucket,
        folder,
        payload={"marker": marker, "generation": str(generation)},
        event_id=stable_event_id(f"{marker}#{generation}"),
    )


def handle_message(
    message: Message, emit: Callable[..., Any], *, watch_prefix: str = ""
) -> dict[str, Any] | None:
    """Process one Pub/Sub message: emit the drop event if it is one, then ack.

    A failure to emit nacks the message, so Pub/Sub redelivers it later (same event id).
    """
    try:
        event = notification_to_event(message.attributes, message.data, watch_prefix=watch_prefix)
        if event is not None:
            emit(**event)
            logger.info("drop %s complete: event emitted", event["payload"]["uri"])
    except Exception:
        logger.exception("could not emit the drop event; the message will be redelivered")
        message.nack()
        return None
    message.ack()
    return event


def run_subscriber(
    subscription: str, *, watch_prefix: str = "", timeout: float | None = None
) -> None:
    """Pull ``subscription`` (``projects/P/subscriptions/S``) until interrupted."""
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]
    from prefect.events import emit_event

    subscriber = pubsub_v1.SubscriberClient()
    future = subscriber.subscribe(
        subscription,
        callback=lambda message: handle_message(message, emit_event, watch_prefix=watch_prefix),
        # Few messages in flight: most are ignored file notifications, each handled in ~ms.
        flow_control=pubsub_v1.types.FlowControl(max_messages=10),
    )
    logger.info("listening on %s", subscription)
    with subscriber:
        try:
            future.result(timeout=timeout)
        except (KeyboardInterrupt, TimeoutError):
            future.cancel()
            future.result()
        finally:
            from flows.drops.watcher import flush_events

            flush_events()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flows.drops.gcs_bridge",
        description="Emit landcover.imagery.dropped for each _DONE marker finalized in GCS.",
    )
    parser.add_argument("--subscription", required=True, help="projects/P/subscriptions/S")
    parser.add_argument("--prefix", default="", help="only drops under this prefix")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s gcs-bridge: %(message)s")
    run_subscriber(args.subscription, watch_prefix=args.prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
