"""Fixtures for the Python SDK: an HTTP server on 127.0.0.1 playing the ingestion batch endpoint, and
clients whose losses are collected and which are shut down after each test."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from segops_sdk import SegOpsClient, SegOpsError


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw_body: bytes
    events: list[dict[str, Any]]


@dataclass
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    drop_connection: bool = False


Responder = Callable[[RecordedRequest, int], Reply]


def accept(request: RecordedRequest, _index: int) -> Reply:
    return Reply(202, body={"queued": len(request.events), "skipped": 0})


class IngestionServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.responder: Responder = accept
        self._cond = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = RecordedRequest(
                    self.command, self.path, dict(self.headers.items()), raw, json.loads(raw).get("events", [])
                )
                with server._cond:
                    server.requests.append(request)
                    index = len(server.requests) - 1
                    server._cond.notify_all()
                reply = server.responder(request, index)
                if reply.drop_connection:
                    self.close_connection = True
                    self.connection.close()
                    return
                data = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [event for request in self.requests for event in request.events]

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"expected {count} request(s), got {len(self.requests)}"
            )

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


@pytest.fixture
def ingestion() -> Iterator[IngestionServer]:
    server = IngestionServer()
    yield server
    server.close()


@dataclass
class Clients:
    """Builds clients against the in-test server; every loss lands in `errors`."""

    server: IngestionServer
    errors: list[SegOpsError] = field(default_factory=list)
    created: list[SegOpsClient] = field(default_factory=list)

    def __call__(self, **options: Any) -> SegOpsClient:
        options.setdefault("on_error", self.errors.append)
        client = SegOpsClient(self.server.url, "sk_test_0123456789", **options)
        self.created.append(client)
        return client


@pytest.fixture
def clients(ingestion: IngestionServer) -> Iterator[Clients]:
    made = Clients(ingestion)
    yield made
    for client in made.created:
        assert client.shutdown(timeout=30)
