"""The GCS notification bridge: Pub/Sub object notifications → drop events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows.drops.events import BUCKET_LABEL, DROP_EVENT, PREFIX_LABEL
from flows.drops.gcs_bridge import handle_message, notification_to_event


def finalize(name: str, bucket: str = "imagery", generation: str = "1717200000000000") -> tuple:
    """A GCS OBJECT_FINALIZE notification as Pub/Sub delivers it (JSON payload format)."""
    attributes = {
        "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1",
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": bucket,
        "objectId": name,
        "objectGeneration": generation,
        "eventTime": "2024-06-01T02:00:00.000000Z",
    }
    resource = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{generation}",
        "name": name,
        "bucket": bucket,
        "generation": generation,
        "size": "0",
        "contentType": "application/octet-stream",
    }
    return attributes, json.dumps(resource).encode()


def test_marker_notification_becomes_one_drop_event() -> None:
    event = notification_to_event(*finalize("drops/2024-06-01/_DONE"))
    assert event is not None
    assert event["event"] == DROP_EVENT
    assert event["resource"][BUCKET_LABEL] == "imagery"
    assert event["resource"][PREFIX_LABEL] == "drops/2024-06-01"
    assert event["payload"]["uri"] == "gs://imagery/drops/2024-06-01"
    assert event["payload"]["marker"] == "gs://imagery/drops/2024-06-01/_DONE"
    # Pub/Sub redelivers: the same notification gives the same event id, a new marker a new one.
    again = notification_to_event(*finalize("drops/2024-06-01/_DONE"))
    assert again is not None and again["id"] == event["id"]
    other = notification_to_event(*finalize("drops/2024-06-01/_DONE", generation="2"))
    assert other is not None and other["id"] != event["id"]


@pytest.mark.parametrize(
    "name", ["drops/2024-06-01/123_sat.jpg", "drops/2024-06-01/123_mask.png", "_DONE"]
)
def test_scene_files_and_a_bucket_level_marker_are_not_drops(name: str) -> None:
    assert notification_to_event(*finalize(name)) is None


def test_other_event_types_and_prefixes_are_ignored() -> None:
    attributes, data = finalize("drops/d1/_DONE")
    assert notification_to_event({**attributes, "eventType": "OBJECT_DELETE"}, data) is None
    assert notification_to_event(attributes, data, watch_prefix="other/") is None
    assert notification_to_event(attributes, data, watch_prefix="drops/") is not None
    # Attributes alone (payload format NONE) are enough.
    assert notification_to_event(attributes, b"") is not None


class FakeMessage:
    def __init__(self, attributes: dict[str, str], data: bytes) -> None:
        self.attributes, self.data = attributes, data
        self.acked = self.nacked = 0

    def ack(self) -> None:
        self.acked += 1

    def nack(self) -> None:
        self.nacked += 1


def test_subscriber_emits_for_markers_acks_everything_and_nacks_failures() -> None:
    emitted: list[dict[str, Any]] = []
    scene = FakeMessage(*finalize("drops/d1/1_sat.jpg"))
    marker = FakeMessage(*finalize("drops/d1/_DONE"))
    for message in (scene, marker):
        handle_message(message, lambda **event: emitted.append(event))
    assert [e["resource"][PREFIX_LABEL] for e in emitted] == ["drops/d1"]
    assert (scene.acked, marker.acked) == (1, 1)

    def broken(**_: Any) -> None:
        raise ConnectionError("prefect api unreachable")

    failing = FakeMessage(*finalize("drops/d2/_DONE"))
    assert handle_message(failing, broken) is None
    assert (failing.acked, failing.nacked) == (0, 1)
