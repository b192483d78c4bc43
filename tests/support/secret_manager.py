"""An in-test gRPC GCP Secret Manager (`google.cloud.secretmanager.v1.SecretManagerService`), one per
test: the real client library talks to it over gRPC (`SEGOPS_SECRET_MANAGER_ENDPOINT`), with Secret
Manager's semantics for what SegOps calls — secrets hold versions, `latest` is the newest enabled one,
destroyed versions lose their payload, deleting a secret deletes every version, unknown names are
NOT_FOUND and a second create is ALREADY_EXISTS. `corrupt_next_access` flips one payload byte of the
next answer (the checksum stays), as transit corruption would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.servers import free_port


@dataclass
class StoredVersion:
    name: str
    data: bytes
    crc32c: int
    state: str = "ENABLED"


@dataclass
class SecretManagerServer:
    host: str
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # secret name → labels
    versions: dict[str, list[StoredVersion]] = field(default_factory=dict)
    corrupt_next_access: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def live_payloads(self, secret: str) -> list[bytes]:
        """The payloads of the secret's versions that are not destroyed, oldest first."""
        with self.lock:
            return [v.data for v in self.versions.get(secret, []) if v.state != "DESTROYED"]


def _handlers(state: SecretManagerServer) -> Any:
    import grpc
    from google.cloud.secretmanager_v1 import types
    from google.protobuf import empty_pb2

    def version_out(version: StoredVersion) -> Any:
        return types.SecretVersion(name=version.name, state=version.state)

    def create_secret(request: Any, context: Any) -> Any:
        name = f"{request.parent}/secrets/{request.secret_id}"
        with state.lock:
            if name in state.secrets:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            state.secrets[name] = dict(request.secret.labels)
            state.versions[name] = []
        return types.Secret(name=name, labels=dict(request.secret.labels))

    def add_secret_version(request: Any, context: Any) -> Any:
        with state.lock:
            if request.parent not in state.secrets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.parent}] not found.")
            versions = state.versions[request.parent]
            version = StoredVersion(
                f"{request.parent}/versions/{len(versions) + 1}",
                bytes(request.payload.data),
                request.payload.data_crc32c,
            )
            versions.append(version)
        return version_out(version)

    def _version(name: str, context: Any) -> StoredVersion:
        secret, _, number = name.partition("/versions/")
        candidates = state.versions.get(secret)
        if candidates is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret}] not found.")
        if number == "latest":
            enabled = [v for v in candidates if v.state == "ENABLED"]
            if not enabled:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret}] has no enabled version.")
            return enabled[-1]
        found = [v for v in candidates if v.name == name]
        if not found:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret version [{name}] not found.")
        return found[0]

    def access_secret_version(request: Any, context: Any) -> Any:
        with state.lock:
            version = _version(request.name, context)
            data = version.data
            if state.corrupt_next_access:
                state.corrupt_next_access = False
                data = bytes([data[0] ^ 1]) + data[1:]
        return types.AccessSecretVersionResponse(
            name=version.name, payload=types.SecretPayload(data=data, data_crc32c=version.crc32c)
        )

    def list_secret_versions(request: Any, context: Any) -> Any:
        with state.lock:
            if request.parent not in state.secrets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.parent}] not found.")
            versions = list(state.versions[request.parent])
        if request.filter:  # SegOps asks for live versions only: "state:ENABLED OR state:DISABLED"
            wanted = {part.split(":", 1)[1] for part in request.filter.split(" OR ")}
            versions = [v for v in versions if v.state in wanted]
        return types.ListSecretVersionsResponse(
            versions=[version_out(v) for v in reversed(versions)], total_size=len(versions)
        )

    def destroy_secret_version(request: Any, context: Any) -> Any:
        with state.lock:
            version = _version(request.name, context)
            version.state, version.data = "DESTROYED", b""
        return version_out(version)

    def delete_secret(request: Any, context: Any) -> Any:
        with state.lock:
            if request.name not in state.secrets:
                context.abort(grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found.")
            del state.secrets[request.name]
            del state.versions[request.name]
        return empty_pb2.Empty()

    def unary(function: Any, request_type: Any, response_type: Any) -> Any:
        return grpc.unary_unary_rpc_method_handler(
            function,
            request_deserializer=request_type.deserialize,
            response_serializer=response_type.serialize,
        )

    empty = grpc.unary_unary_rpc_method_handler(
        delete_secret,
        request_deserializer=types.DeleteSecretRequest.deserialize,
        response_serializer=empty_pb2.Empty.SerializeToString,
    )
    return grpc.method_handlers_generic_handler(
        "google.cloud.secretmanager.v1.SecretManagerService",
        {
            "CreateSecret": unary(create_secret, types.CreateSecretRequest, types.Secret),
            "AddSecretVersion": unary(add_secret_version, types.AddSecretVersionRequest, types.SecretVersion),
            "AccessSecretVersion": unary(
                access_secret_version, types.AccessSecretVersionRequest, types.AccessSecretVersionResponse
            ),
            "ListSecretVersions": unary(
                list_secret_versions, types.ListSecretVersionsRequest, types.ListSecretVersionsResponse
            ),
            "DestroySecretVersion": unary(
                destroy_secret_version, types.DestroySecretVersionRequest, types.SecretVersion
            ),
            "DeleteSecret": empty,
        },
    )


@pytest.fixture
def secret_manager_server() -> Iterator[SecretManagerServer]:
    """GIVEN an empty in-test Secret Manager; point `secret_manager_endpoint` at its `host`."""
    import grpc

    state = SecretManagerServer(host=f"127.0.0.1:{free_port()}")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_handlers(state),))
    server.add_insecure_port(state.host)
    server.start()
    try:
        yield state
    finally:
        server.stop(grace=None)
