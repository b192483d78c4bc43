"""One contract for every `ObjectStore`: the local directory and GCS (the real GCS JSON API server)."""

from __future__ import annotations

import hashlib
import io
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from segops.objects.base import ObjectStore
from segops.objects.gcs import GcsObjectStore
from segops.objects.local import LocalObjectStore


@pytest.fixture(params=["local", "gcs"])
def objects(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    return GcsObjectStore(request.getfixturevalue("gcs_client"), request.getfixturevalue("gcs_bucket"))


class ForwardOnly(io.RawIOBase):
    """A source that can only be read forwards, in small pieces (like a socket or a pipe)."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self.remaining = size
        self.digest = hashlib.sha256()
        self._block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB pattern

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.remaining, 64 * 1024)
        chunk = self._block[:n]
        buffer[:n] = chunk
        self.digest.update(chunk)
        self.remaining -= n
        return n


def test_upload_open_round_trip(objects: ObjectStore) -> None:
    # GIVEN an object uploaded from a stream
    size = objects.upload("exports/1/a.csv", io.BytesIO(b"user_id\nu1\nu2\n"), "text/csv")
    # THEN its size is reported and reading it back gives the same bytes
    assert size == 14
    with objects.open("exports/1/a.csv") as reader:
        assert reader.read() == b"user_id\nu1\nu2\n"
    assert objects.exists("exports/1/a.csv")


def test_multi_megabyte_upload_is_streamed_intact(objects: ObjectStore) -> None:
    # GIVEN a 9 MiB source that cannot seek (larger than the 8 MiB upload chunk)
    source = ForwardOnly(9 * 1024 * 1024 + 123)
    # WHEN it is uploaded
    size = objects.upload("exports/1/big.parquet", io.BufferedReader(source), "application/octet-stream")
    # THEN every byte arrived, in order
    assert size == 9 * 1024 * 1024 + 123
    digest = hashlib.sha256()
    with objects.open("exports/1/big.parquet") as reader:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == source.digest.hexdigest()


def test_overwrite_replaces_content(objects: ObjectStore) -> None:
    objects.upload("exports/1/a.csv", io.BytesIO(b"old"), "text/csv")
    objects.upload("exports/1/a.csv", io.BytesIO(b"new content"), "text/csv")
    with objects.open("exports/1/a.csv") as reader:
        assert reader.read() == b"new content"


def test_list_prefix_and_delete(objects: ObjectStore) -> None:
    for key in ["exports/1/b.csv", "exports/1/a.csv", "exports/2/a.csv"]:
        objects.upload(key, io.BytesIO(key.encode()), "text/csv")
    assert objects.list("exports/1/") == ["exports/1/a.csv", "exports/1/b.csv"]
    objects.delete("exports/1/a.csv")
    objects.delete("exports/1/never-existed.csv")  # deleting what is absent is not an error
    assert not objects.exists("exports/1/a.csv")
    assert objects.list("exports/") == ["exports/1/b.csv", "exports/2/a.csv"]


def test_any_valid_key_is_listed(objects: ObjectStore) -> None:
    # a key that merely contains ".part" is an object like any other (not a partial upload)
    objects.upload("exports/1/report.part1.csv", io.BytesIO(b"x"), "text/csv")
    assert objects.list("exports/1/") == ["exports/1/report.part1.csv"]


def test_concurrent_uploads_of_one_key_leave_one_whole_object(objects: ObjectStore) -> None:
    bodies = [bytes([n]) * 200_000 for n in range(4)]
    threads = [
        threading.Thread(
            target=objects.upload, args=("exports/1/same.bin", io.BytesIO(body), "application/octet-stream")
        )
        for body in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with objects.open("exports/1/same.bin") as reader:
        assert reader.read() in bodies
    assert objects.list("exports/1/") == ["exports/1/same.bin"]


def test_keys_that_could_escape_are_rejected(objects: ObjectStore) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        objects.upload("../outside", io.BytesIO(b"x"), "text/plain")


def test_check_passes_when_reachable(objects: ObjectStore) -> None:
    objects.check()


def test_local_store_has_no_signed_urls(tmp_path: Path) -> None:
    local = LocalObjectStore(tmp_path)
    local.upload("exports/1/a.csv", io.BytesIO(b"x"), "text/csv")
    assert local.signed_url("exports/1/a.csv", timedelta(minutes=5)) is None


# -- V4 signed URLs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service_account() -> tuple[Any, rsa.RSAPrivateKey]:
    """Service-account credentials with a fresh RSA key (what Cloud Functions would hold)."""
    from google.oauth2 import service_account as sa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "segops-test",
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": "exports@segops-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return sa.Credentials.from_service_account_info(info), key


def _string_to_sign(url: str) -> tuple[str, dict[str, str]]:
    """The V4 string-to-sign a GCS server rebuilds from a signed GET URL (no extra headers)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    canonical_query = "&".join(
        f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in sorted(query.items()) if k != "X-Goog-Signature"
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}", "", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = query["X-Goog-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        [query["X-Goog-Algorithm"], query["X-Goog-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    return string_to_sign, query


def test_gcs_signed_url_is_v4_with_expiry_and_valid_signature(
    gcs_endpoint: str, gcs_client: Any, gcs_bucket: str, service_account: tuple[Any, rsa.RSAPrivateKey]
) -> None:
    # GIVEN an export object and a store that signs with a service-account key
    credentials, private_key = service_account
    objects = GcsObjectStore(gcs_client, gcs_bucket, signing_credentials=credentials)
    objects.upload("exports/7/members.csv", io.BytesIO(b"user_id\nu1\n"), "text/csv")
    before = datetime.now(UTC).replace(microsecond=0)
    # WHEN a 15-minute download URL is generated
    url = objects.signed_url("exports/7/members.csv", timedelta(minutes=15))
    # THEN it is a V4 signed GET for exactly that object, expiring in 15 minutes
    assert url is not None
    string_to_sign, query = _string_to_sign(url)
    # (on the storage endpoint the client uses: storage.googleapis.com in production, the test server here)
    assert f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" == gcs_endpoint
    assert urlsplit(url).path == f"/{gcs_bucket}/exports/7/members.csv"
    assert query["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
    assert query["X-Goog-Expires"] == "900"
    assert query["X-Goog-SignedHeaders"] == "host"
    email, date, location, service, terminator = query["X-Goog-Credential"].split("/")
    assert (email, location, service, terminator) == (
        credentials.service_account_email,
        "auto",
        "storage",
        "goog4_request",
    )
    signed_at = datetime.strptime(query["X-Goog-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert date == signed_at.strftime("%Y%m%d")
    assert before <= signed_at <= datetime.now(UTC) + timedelta(seconds=1)
    # AND the signature verifies with the service account's public key over the V4 string-to-sign
    signature = bytes.fromhex(query["X-Goog-Signature"])
    private_key.public_key().verify(signature, string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256())
    # AND the URL downloads the object (the test server does not check signatures; real GCS does)
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.read() == b"user_id\nu1\n"


def test_gcs_signed_url_signature_does_not_cover_another_object(
    gcs_client: Any, gcs_bucket: str, service_account: tuple[Any, rsa.RSAPrivateKey]
) -> None:
    credentials, private_key = service_account
    objects = GcsObjectStore(gcs_client, gcs_bucket, signing_credentials=credentials)
    url = objects.signed_url("exports/7/members.csv", timedelta(minutes=1))
    assert url is not None
    tampered = url.replace("members.csv", "other.csv")
    string_to_sign, query = _string_to_sign(tampered)
    from cryptography.exceptions import InvalidSignature

    with pytest.raises(InvalidSignature):
        private_key.public_key().verify(
            bytes.fromhex(query["X-Goog-Signature"]), string_to_sign.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
