"""Terraform delivers bus messages by Pub/Sub push subscriptions (terraform/pubsub.tf): the raw push
body, POSTed to `<function url>/projects/<p>/topics/<t>`, must reach a CloudEvent function exactly
as Eventarc's delivery does, decoded by the same `segops.bus.cloudevents.from_cloudevent`."""

from __future__ import annotations

import json
from pathlib import Path

import functions_framework
import pytest
from segops.bus.base import BusMessage
from segops.bus.cloudevents import from_cloudevent, to_cloudevent

from tests.support.fixtures import load_fixture

CONSUMER = """
import json, os
import functions_framework
from segops.bus.cloudevents import from_cloudevent

@functions_framework.cloud_event
def consume(event):
    m = from_cloudevent(event)
    with open(os.environ["PUSH_SINK"], "a") as sink:
        sink.write(json.dumps({"topic": m.topic, "data": m.data.decode(), "attributes": m.attributes,
                               "id": m.message_id, "time": m.publish_time.isoformat(),
                               "attempt": m.delivery_attempt}) + "\\n")
"""


@pytest.fixture
def delivered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, Path]:
    source = tmp_path / "main.py"
    source.write_text(CONSUMER)
    sink = tmp_path / "sink.jsonl"
    monkeypatch.setenv("PUSH_SINK", str(sink))
    # Deployed without an Eventarc trigger, Cloud Functions starts the framework as `http`;
    # the `@functions_framework.cloud_event` decorator must still make it a CloudEvent function.
    app = functions_framework.create_app("consume", str(source), "http")
    return app.test_client(), sink


def test_a_raw_push_body_becomes_the_same_bus_message(delivered: tuple[object, Path]) -> None:
    client, sink = delivered
    # GIVEN the body a push subscription sends for a message on `events`
    sample = load_fixture("cloudevents/pubsub-events")
    # WHEN it is POSTed to the push endpoint Terraform configures, and as Eventarc's CloudEvent
    pushed = client.post("/projects/p/topics/events", json=sample["body"])  # type: ignore[attr-defined]
    via_eventarc = client.post("/", json=sample["body"], headers=sample["headers"])  # type: ignore[attr-defined]
    # THEN the handler sees the topic, payload, attributes, id, publish time and attempt number, both times
    assert pushed.status_code == 200 and via_eventarc.status_code == 200
    expected = {
        "topic": "events",
        "data": '{"event_id": "e1"}',
        "attributes": {"tenant_id": "7"},
        "id": "m-1",
        "time": "2026-11-23T10:00:00.123000+00:00",
        "attempt": 3,
    }
    assert [json.loads(line) for line in sink.read_text().splitlines()] == [expected, expected]


def test_push_and_eventarc_deliveries_decode_identically(delivered: tuple[object, Path]) -> None:
    client, sink = delivered
    message = BusMessage(
        topic="segment-compute", data=b'{"kind": "scheduled"}', attributes={}, message_id="m-2", delivery_attempt=2
    )
    headers, eventarc_body = to_cloudevent(message, "p", "sub")
    # WHEN the same message arrives once as Eventarc sends it and once as a raw push
    client.post("/", json=eventarc_body, headers=headers)  # type: ignore[attr-defined]
    client.post("/projects/p/topics/segment-compute", json=eventarc_body)  # type: ignore[attr-defined]
    # THEN the handler cannot tell them apart
    eventarc, push = (json.loads(line) for line in sink.read_text().splitlines())
    assert eventarc == push
    assert push["topic"] == "segment-compute"
    assert push["attempt"] == 2


def test_a_push_without_an_attempt_number_counts_as_the_first(delivered: tuple[object, Path]) -> None:
    client, sink = delivered
    # GIVEN a subscription without a dead-letter policy (Pub/Sub then omits deliveryAttempt)
    body = {"message": {"data": "", "messageId": "m-3"}, "subscription": "projects/p/subscriptions/s"}
    client.post("/projects/p/topics/events", json=body)  # type: ignore[attr-defined]
    assert json.loads(sink.read_text())["attempt"] == 1


def test_the_decoder_is_the_consumers(delivered: tuple[object, Path]) -> None:
    # The consumer entry point (segops.bus.consumer.consume) decodes with this very function.
    import segops.bus.consumer as consumer

    assert consumer.from_cloudevent is from_cloudevent
