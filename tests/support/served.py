"""The whole stack (the same wiring as `make dev`) served over real HTTP, for real clients, and a proxy
that loses answers (so clients retry requests the stack already accepted)."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from segops.localstack import LocalStack
from werkzeug.serving import make_server


@pytest.fixture
def served(stack: LocalStack) -> Iterator[str]:
    """GIVEN the stack listening on a free port of 127.0.0.1 (bus drained by the test)."""
    server = make_server("127.0.0.1", 0, stack.wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


class LossyProxy:
    """Forwards to the stack, but answers 503 instead of the stack's reply for the first `lose` requests."""

    def __init__(self, upstream: str, lose: int) -> None:
        self.upstream_statuses: list[int] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {"Authorization": self.headers["Authorization"], "Content-Type": "application/json"}
                if self.headers["Content-Encoding"]:
                    headers["Content-Encoding"] = self.headers["Content-Encoding"]
                forwarded = urllib.request.Request(upstream + self.path, data=body, method="POST", headers=headers)
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
