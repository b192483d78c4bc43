"""An in-test Vertex AI endpoint: `generateContent` answering from a script, and the OAuth token
endpoint application default credentials refresh against. The real `google-genai` client talks to it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TOKEN = "ya29.test-token"


@dataclass
class GeminiServer:
    url: str
    answers: list[str | float] = field(default_factory=list)  # JSON text to answer, or seconds to stall
    requests: list[dict[str, Any]] = field(default_factory=list)
    token_requests: list[str] = field(default_factory=list)  # form bodies sent to the token endpoint

    def credentials_file(self, directory: Path) -> Path:
        """Application default credentials (a service account key) whose token endpoint is this server."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = directory / "adc.json"
        info = {
            "type": "service_account",
            "project_id": "proj-x",
            "private_key_id": "test-key",
            "private_key": pem.decode(),
            "client_email": "api@proj-x.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path.write_text(json.dumps(info))
        return path


def _handler(server: GeminiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/token":
                server.token_requests.append(body.decode())
                self._send(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
                return
            if not self.path.endswith(":generateContent"):
                self._send(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
                return
            server.requests.append(
                {"path": self.path, "authorization": self.headers.get("Authorization"), "json": json.loads(body)}
            )
            answer = server.answers.pop(0)
            if isinstance(answer, float):
                time.sleep(answer)
                answer = "{}"
            self._send(
                200,
                {
                    "candidates": [
                        {"content": {"role": "model", "parts": [{"text": answer}]}, "finishReason": "STOP", "index": 0}
                    ],
                    "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20},
                    "modelVersion": "gemini-test",
                },
            )

        def _send(self, status: int, document: dict[str, Any]) -> None:
            payload = json.dumps(document).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout)

    return Handler


def serve_gemini() -> Iterator[GeminiServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    httpd.daemon_threads = True  # a stalled answer must not hold up shutdown
    httpd.block_on_close = False
    server = GeminiServer(url=f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(server)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
