"""The Python SDK against the whole stack (the same wiring as `make dev`) served over real HTTP."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from segops.localstack import LocalStack
from segops_sdk import SegOpsClient, SegOpsError
from werkzeug.serving import make_server

from tests.support.api import Account, Api


@pytest.fixture
def served(stack: LocalStack) -> Iterator[str]:
    """GIVEN the stack listening on a free port of 127.0.0.1 (bus drained by the test)."""
    server = make_server("127.0.0.1", 0, stack.wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def account(stack: LocalStack) -> Account:
    return Api(stack).signup()


def event_type_counts(stack: LocalStack, account: Account) -> dict[str, int]:
    response = Api(stack).get("/api/ingestion/stats/?window=24h", headers=account.key)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {row["event_type"]: row["count"] for row in response.get_json()["event_types"]}


class LossyProxy:
    """Forwards to the stack, but answers 503 instead of the stack's reply for the first `lose` requests."""

    def __init__(self, upstream: str, lose: int) -> None:
        self.upstream_statuses: list[int] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                forwarded = urllib.request.Request(
                    upstream + self.path,
                    data=body,
                    method="POST",
                    headers={"Authorization": self.headers["Authorization"], "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(forwarded, timeout=30) as answer:
                    status, text = answer.status, answer.read()
                proxy.upstream_statuses.append(status)
                if len(proxy.upstream_statuses) <= lose:
                    status, text = 503, b'{"error":{"code":"unavailable","message":"lost answer","details":null}}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


def test_retries_after_lost_answers_are_counted_once(stack: LocalStack, served: str, account: Account) -> None:
    # GIVEN a proxy that lets the first two requests reach the stack but loses the stack's answers
    proxy = LossyProxy(served, lose=2)
    errors: list[SegOpsError] = []
    client = SegOpsClient(proxy.url, account.api_key, on_error=errors.append)
    try:
        # WHEN 45 events and an identify are tracked and the client shuts down
        for n in range(45):
            client.track(user_id=f"user-{n}", event_type="e2e_retried", payload={"n": n})
        client.identify(user_id="user-1", traits={"plan": "starter"})
        assert client.shutdown(timeout=60)
    finally:
        proxy.close()
    # THEN the stack accepted every attempt (two of them had their answers lost: 1 or 2 batches, depending
    # on when the sender thread woke up), and the SDK saw success in the end
    assert errors == []
    assert len(proxy.upstream_statuses) >= 3
    assert set(proxy.upstream_statuses) == {202}
    # AND once the bus has delivered everything, each event is counted once
    stack.bus.drain()
    assert event_type_counts(stack, account) == {"e2e_retried": 45, "context_identified": 1}


def test_invalid_events_are_reported_and_valid_ones_arrive(stack: LocalStack, served: str, account: Account) -> None:
    errors: list[SegOpsError] = []
    client = SegOpsClient(served, account.api_key, on_error=errors.append)
    client.track(user_id="user-1", event_type="e2e_valid")
    client.track(user_id="user-1", event_type="Not-Snake-Case")
    assert client.shutdown(timeout=60)
    assert [(e.kind, e.event_count) for e in errors] == [("skipped", 1)]
    stack.bus.drain()
    assert event_type_counts(stack, account) == {"e2e_valid": 1}


def test_a_wrong_api_key_is_reported_not_retried(served: str) -> None:
    errors: list[SegOpsError] = []
    client = SegOpsClient(served, "sk_not_a_key", on_error=errors.append)
    client.track(user_id="user-1", event_type="page_viewed")
    assert client.shutdown(timeout=60)
    assert [(e.kind, e.status) for e in errors] == [("rejected", 401)]
