"""The drop event: its resource, its URI and the deployment trigger that reacts to it."""

from __future__ import annotations

import pytest

from flows.drops.events import (
    BUCKET_LABEL,
    DROP_EVENT,
    PREFIX_LABEL,
    drop_event,
    drop_resource,
    drop_trigger,
    drop_uri,
)


def test_drop_resource_names_bucket_and_prefix() -> None:
    resource = drop_resource("imagery", "/drops/2024-06-01/")
    assert resource == {
        "prefect.resource.id": "landcover.drop.imagery/drops/2024-06-01",
        "prefect.resource.name": "2024-06-01",
        BUCKET_LABEL: "imagery",
        PREFIX_LABEL: "drops/2024-06-01",
    }


@pytest.mark.parametrize(
    ("bucket", "prefix", "uri"),
    [
        ("imagery", "drops/d1", "gs://imagery/drops/d1"),
        ("/data/drops", "d1", "/data/drops/d1"),
        ("gs://imagery", "drops/d1/", "gs://imagery/drops/d1"),
    ],
)
def test_drop_uri(bucket: str, prefix: str, uri: str) -> None:
    assert drop_uri(bucket, prefix) == uri


def test_trigger_matches_the_event_and_templates_its_labels() -> None:
    from prefect.events import DeploymentEventTrigger

    trigger = DeploymentEventTrigger(**drop_trigger())
    assert trigger.expect == {DROP_EVENT}
    event = drop_event("imagery", "drops/d1")
    resource_id = event["resource"]["prefect.resource.id"]
    pattern = trigger.match.model_dump()["prefect.resource.id"]
    assert resource_id.startswith(str(pattern).rstrip("*"))
    assert trigger.parameters == {
        "bucket": "{{ event.resource['landcover.bucket'] }}",
        "prefix": "{{ event.resource['landcover.prefix'] }}",
    }
