from __future__ import annotations

import uuid
from typing import Any

import google.cloud.storage as storage
import orjson
from google.api_core import exceptions as gexc
from google.cloud.storage.retry import DEFAULT_RETRY

from segops.store.base import Document, GenerationMismatch
from segops.store.keys import validate_key

# The library retries transient failures for up to 120 s, longer than any HTTP function may take: a
# GCS outage must become a 503 the caller can retry (docs/operations.md § Outages), not a timeout.
_RETRY = DEFAULT_RETRY.with_timeout(4.0)
_TIMEOUT = (2.0, 5.0)  # connect, read (seconds), per HTTP request
_WRITE_ID = "segops-write-id"


class GcsStore:
    """Documents as GCS objects; CAS through `if_generation_match` (strongly consistent)."""

    def __init__(self, client: storage.Client, bucket: str, prefix: str = "") -> None:
        self._bucket = client.bucket(bucket)
        self._prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self._prefix}{validate_key(key)}.json"

    def get(self, key: str) -> Document | None:
        blob = self._bucket.blob(self._name(key))
        try:
            raw = blob.download_as_bytes(timeout=_TIMEOUT, retry=_RETRY)
        except gexc.NotFound:
            return None
        assert blob.generation is not None
        return Document(key=key, body=orjson.loads(raw), generation=int(blob.generation))

    def put(self, key: str, body: dict[str, Any], if_generation: int | None = None) -> int:
        blob = self._bucket.blob(self._name(key))
        # The library retries a conditional upload whose answer was lost; the retry then fails its
        # precondition against our own write. Each write carries an id, so a mismatch that is in
        # fact our write is told apart from another writer's.
        write_id = uuid.uuid4().hex
        blob.metadata = {_WRITE_ID: write_id}
        try:
            blob.upload_from_string(
                orjson.dumps(body),
                content_type="application/json",
                if_generation_match=if_generation,
                timeout=_TIMEOUT,
                retry=_RETRY,
            )
        except gexc.PreconditionFailed as exc:
            written = self._bucket.get_blob(self._name(key), timeout=_TIMEOUT, retry=_RETRY)
            if written is not None and (written.metadata or {}).get(_WRITE_ID) == write_id:
                assert written.generation is not None
                return int(written.generation)
            raise GenerationMismatch(key) from exc
        assert blob.generation is not None
        return int(blob.generation)

    def list(self, prefix: str) -> list[str]:
        full = self._prefix + prefix
        start = len(self._prefix)
        return sorted(
            blob.name[start : -len(".json")]
            for blob in self._bucket.client.list_blobs(self._bucket, prefix=full, timeout=_TIMEOUT, retry=_RETRY)
            if blob.name.endswith(".json")
        )

    def delete(self, key: str, if_generation: int | None = None) -> None:
        blob = self._bucket.blob(self._name(key))
        try:
            blob.delete(if_generation_match=if_generation, timeout=_TIMEOUT, retry=_RETRY)
        except gexc.NotFound:
            if if_generation not in (None, 0):
                raise GenerationMismatch(key) from None
        except gexc.PreconditionFailed as exc:
            raise GenerationMismatch(key) from exc

    def check(self) -> None:
        next(iter(self._bucket.client.list_blobs(self._bucket, max_results=1, timeout=_TIMEOUT, retry=_RETRY)), None)
