from __future__ import annotations

import shutil
from datetime import timedelta
from typing import IO, Any

import google.cloud.storage as storage

from segops.store.keys import validate_key


class GcsObjectStore:
    def __init__(self, client: storage.Client, bucket: str, signing_credentials: Any | None = None) -> None:
        self._client = client
        self._bucket = client.bucket(bucket)
        self._signing_credentials = signing_credentials

    def upload(self, key: str, source: IO[bytes], content_type: str) -> int:
        blob = self._bucket.blob(validate_key(key), chunk_size=8 << 20)
        # A resumable upload fed chunk by chunk: `source` may be a pipe (no seek/tell), and at most
        # one chunk is held in memory whatever the object's size.
        with blob.open("wb", content_type=content_type) as writer:
            shutil.copyfileobj(source, writer, 1 << 20)
        blob.reload()
        return int(blob.size or 0)

    def open(self, key: str) -> IO[bytes]:
        reader: IO[bytes] = self._bucket.blob(validate_key(key)).open("rb")
        return reader

    def exists(self, key: str) -> bool:
        return bool(self._bucket.blob(validate_key(key)).exists())

    def delete(self, key: str) -> None:
        blob = self._bucket.blob(validate_key(key))
        if blob.exists():
            blob.delete()

    def signed_url(self, key: str, expires: timedelta) -> str | None:
        blob = self._bucket.blob(validate_key(key))
        if self._signing_credentials is not None:
            return str(
                blob.generate_signed_url(
                    version="v4", expiration=expires, method="GET", credentials=self._signing_credentials
                )
            )
        # On Cloud Functions the runtime service account signs through the IAM signBlob API.
        import google.auth
        import google.auth.transport.requests

        credentials, _ = google.auth.default()
        credentials.refresh(google.auth.transport.requests.Request())
        return str(
            blob.generate_signed_url(
                version="v4",
                expiration=expires,
                method="GET",
                service_account_email=getattr(credentials, "service_account_email", None),
                access_token=credentials.token,
            )
        )

    def list(self, prefix: str) -> list[str]:
        return sorted(b.name for b in self._client.list_blobs(self._bucket, prefix=prefix))

    def check(self) -> None:
        next(iter(self._client.list_blobs(self._bucket, max_results=1)), None)
