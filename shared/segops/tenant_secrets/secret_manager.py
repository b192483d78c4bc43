"""GCP Secret Manager: one secret per tenant credential (`base.SecretName`), labelled with its tenant
and kind. An update adds a version and destroys the earlier ones; a delete deletes the secret, which
destroys every version. Payloads carry a CRC32C both ways, as Google recommends, so corruption in
transit is refused instead of being used as a credential."""

from __future__ import annotations

import contextlib
from typing import Any

import google.cloud.secretmanager_v1 as secretmanager_v1
import google_crc32c
import grpc
from google.api_core import exceptions
from google.cloud.secretmanager_v1.services.secret_manager_service.transports.grpc import (
    SecretManagerServiceGrpcTransport,
)

from segops.tenant_secrets.base import SecretName

# Versions worth destroying when a newer one replaces them (destroyed ones are already gone).
_LIVE_VERSIONS = "state:ENABLED OR state:DISABLED"


class CorruptSecret(Exception):
    """Secret Manager returned a payload whose checksum does not match."""


def _client(endpoint: str) -> Any:
    if not endpoint:
        return secretmanager_v1.SecretManagerServiceClient()
    # A plaintext endpoint (SEGOPS_SECRET_MANAGER_ENDPOINT), as for Pub/Sub's and GCS's local servers.
    transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(endpoint))
    return secretmanager_v1.SecretManagerServiceClient(transport=transport)


class SecretManagerSecrets:
    def __init__(self, project: str, prefix: str, endpoint: str = "") -> None:
        self._project = project
        self._prefix = prefix
        self._client = _client(endpoint)

    def _path(self, name: SecretName) -> str:
        return f"projects/{self._project}/secrets/{name.secret_id(self._prefix)}"

    def put(self, name: SecretName, value: str) -> None:
        path = self._path(name)
        data = value.encode()
        payload = {"data": data, "data_crc32c": google_crc32c.value(data)}
        try:
            added = self._client.add_secret_version(request={"parent": path, "payload": payload})
        except exceptions.NotFound:
            self._create(name)
            added = self._client.add_secret_version(request={"parent": path, "payload": payload})
        # The replaced credential must not stay readable: destroy every older live version.
        for version in self._client.list_secret_versions(request={"parent": path, "filter": _LIVE_VERSIONS}):
            if version.name != added.name:
                self._client.destroy_secret_version(request={"name": version.name})

    def _create(self, name: SecretName) -> None:
        secret = {
            "replication": {"automatic": {}},
            "labels": {"tenant_id": str(name.tenant_id), "kind": name.kind},
        }
        # AlreadyExists: created concurrently, adding the version is all that is left.
        with contextlib.suppress(exceptions.AlreadyExists):
            self._client.create_secret(
                request={
                    "parent": f"projects/{self._project}",
                    "secret_id": name.secret_id(self._prefix),
                    "secret": secret,
                }
            )

    def get(self, name: SecretName) -> str | None:
        try:
            response = self._client.access_secret_version(request={"name": f"{self._path(name)}/versions/latest"})
        except exceptions.NotFound:
            return None
        data = bytes(response.payload.data)
        if response.payload.data_crc32c != google_crc32c.value(data):
            raise CorruptSecret(f"checksum mismatch reading {response.name}")
        return data.decode()

    def delete(self, name: SecretName) -> None:
        with contextlib.suppress(exceptions.NotFound):
            self._client.delete_secret(request={"name": self._path(name)})
