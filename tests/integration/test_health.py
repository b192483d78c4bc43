"""`GET /api/ingestion/health/` reports real checks: 200 when all are ok, 503 with the reason otherwise."""

from __future__ import annotations

import pytest
from segops.localstack import LocalStack

from tests.support.api import Api


def test_healthy_stack_is_200_and_uncached(stack: LocalStack) -> None:
    response = Api(stack).get("/api/ingestion/health/")
    assert response.status_code == 200
    assert response.get_json() == {"pubsub_topic": "ok", "worker": "ok", "clickhouse": "ok"}
    assert response.headers["Cache-Control"] == "no-store"


def test_missing_events_table_is_503(stack: LocalStack) -> None:
    # GIVEN a warehouse whose events table is gone
    stack.runtime.warehouse.command("DROP TABLE user_properties_mv")
    stack.runtime.warehouse.command("DROP TABLE events")
    # THEN health names the failing dependency and answers 503
    response = Api(stack).get("/api/ingestion/health/")
    assert response.status_code == 503
    assert response.get_json() == {"pubsub_topic": "ok", "worker": "ok", "clickhouse": "events table missing"}


def test_stopped_worker_with_pending_messages_is_503(stack: LocalStack) -> None:
    # GIVEN a worker that was started and stopped, with a message still waiting
    stack.bus.subscribe("events", "slow", lambda _: None)
    stack.bus.start()
    stack.bus.stop()
    stack.bus.publish("events", b"{}")
    response = Api(stack).get("/api/ingestion/health/")
    assert response.status_code == 503
    assert response.get_json()["worker"] == "bus worker is not running"
    stack.bus.drain()  # nothing left for the fixture's stop() to wait for


def test_failing_check_reports_a_request_id_and_logs_the_details(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a dependency whose failure text holds internal details
    def broken() -> None:
        raise ConnectionError("dial 10.8.0.5:8085 as user=segops password=hunter2")

    monkeypatch.setattr(stack.runtime.bus, "check", broken)
    # WHEN the unauthenticated health endpoint is called
    response = Api(stack).get("/api/ingestion/health/")
    # THEN it answers 503 with a generic error carrying the request id, and none of the details
    request_id = response.headers["X-Request-Id"]
    assert response.status_code == 503
    assert response.get_json()["pubsub_topic"] == f"error (request {request_id})"
    assert "10.8.0.5" not in response.get_data(as_text=True) and "hunter2" not in response.get_data(as_text=True)
    # AND the details are in the log line carrying that request id
    [record] = [r for r in caplog.records if r.getMessage() == "health check failed"]
    assert record.__dict__["request_id"] == request_id and record.exc_info is not None
    assert "10.8.0.5" in str(record.exc_info[1])


def test_openapi_documents_the_503_body_as_the_health_report(stack: LocalStack) -> None:
    document = Api(stack).get("/api/openapi.json").get_json()
    responses = document["paths"]["/api/ingestion/health/"]["get"]["responses"]
    # a 503 here is a report, not the error shape: both statuses carry the Health schema
    assert responses["503"]["content"] == responses["200"]["content"]
    assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Health")
