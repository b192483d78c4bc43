"""Tenant secrets behind one interface: GCP Secret Manager (the real client over gRPC, against an
in-test Secret Manager) and the sealed local equivalent keep the same contract; with Secret Manager
the control plane holds no secret at all, updates leave no older version readable, and deletes
destroy them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from segops import vault
from segops.config import Settings
from segops.localstack import LocalStack
from segops.shopify.signature import sign
from segops.store.documents import DocumentRepository
from segops.store.local import LocalStore
from segops.tenant_secrets import TenantSecrets, connector_api_key, shopify_webhook_secret
from segops.tenant_secrets.sealed import SealedSecrets
from segops.tenant_secrets.secret_manager import CorruptSecret, SecretManagerSecrets

from tests.support.api import Api, assert_error
from tests.support.fixtures import shopify_webhook
from tests.support.log_secrets import watch
from tests.support.membership import RecordedMembership
from tests.support.secret_manager import SecretManagerServer

PROJECT = "segops-test"
API_KEY = "pk_live_TENANT_SECRET_a81c"
ROTATED = "pk_live_TENANT_SECRET_ROTATED_4d2e"
SHOPIFY_SECRET = "shpss_TENANT_SECRET_93bf10"
watch(API_KEY, ROTATED, SHOPIFY_SECRET)


def _secret_manager(server: SecretManagerServer, tmp_path: Path) -> TenantSecrets:
    return SecretManagerSecrets(PROJECT, "segops", server.host)


def _sealed(server: SecretManagerServer, tmp_path: Path) -> TenantSecrets:
    keys = {"connector": vault.new_key(), "shopify": vault.new_key()}
    return SealedSecrets(DocumentRepository(LocalStore(tmp_path / "store")), keys)


@pytest.mark.parametrize("backend", [_secret_manager, _sealed], ids=["secret_manager", "sealed"])
def test_both_backends_keep_the_same_contract(
    backend: Callable[[SecretManagerServer, Path], TenantSecrets],
    secret_manager_server: SecretManagerServer,
    tmp_path: Path,
) -> None:
    secrets = backend(secret_manager_server, tmp_path)
    name = connector_api_key(7, 3)
    assert secrets.get(name) is None
    secrets.put(name, API_KEY)
    assert secrets.get(name) == API_KEY
    secrets.put(name, ROTATED)
    assert secrets.get(name) == ROTATED
    # other tenants, other connectors and other kinds are other secrets
    for other in (connector_api_key(8, 3), connector_api_key(7, 4), shopify_webhook_secret(7)):
        assert secrets.get(other) is None
    secrets.put(shopify_webhook_secret(7), SHOPIFY_SECRET)
    secrets.delete(name)
    assert secrets.get(name) is None
    secrets.delete(name)  # deleting what is gone is not an error
    assert secrets.get(shopify_webhook_secret(7)) == SHOPIFY_SECRET


def test_secret_manager_names_tenant_first_destroys_replaced_versions_and_deletes_all(
    secret_manager_server: SecretManagerServer,
) -> None:
    secrets = SecretManagerSecrets(PROJECT, "segops", secret_manager_server.host)
    secrets.put(connector_api_key(42, 7), API_KEY)
    secrets.put(connector_api_key(42, 7), ROTATED)
    path = f"projects/{PROJECT}/secrets/segops-t42-connector-7"
    assert secret_manager_server.secrets == {path: {"tenant_id": "42", "kind": "connector"}}
    # the replaced credential is destroyed, not merely superseded
    assert secret_manager_server.live_payloads(path) == [ROTATED.encode()]
    assert [v.state for v in secret_manager_server.versions[path]] == ["DESTROYED", "ENABLED"]
    secrets.delete(connector_api_key(42, 7))
    assert secret_manager_server.secrets == {} and secret_manager_server.versions == {}


def test_a_payload_corrupted_in_transit_is_refused(secret_manager_server: SecretManagerServer) -> None:
    secrets = SecretManagerSecrets(PROJECT, "segops", secret_manager_server.host)
    secrets.put(shopify_webhook_secret(5), SHOPIFY_SECRET)
    secret_manager_server.corrupt_next_access = True
    with pytest.raises(CorruptSecret):
        secrets.get(shopify_webhook_secret(5))
    assert secrets.get(shopify_webhook_secret(5)) == SHOPIFY_SECRET


def test_the_sealed_backend_fails_closed_for_a_kind_whose_key_it_lacks(tmp_path: Path) -> None:
    # GIVEN a connector sync's view: the connector key only (as the manifest grants)
    documents = DocumentRepository(LocalStore(tmp_path / "store"))
    writer = SealedSecrets(documents, {"connector": vault.new_key(), "shopify": vault.new_key()})
    writer.put(shopify_webhook_secret(1), SHOPIFY_SECRET)
    reader = SealedSecrets(documents, {"connector": vault.new_key(), "shopify": ""})
    with pytest.raises(vault.SecretUnavailable):
        reader.get(shopify_webhook_secret(1))


@pytest.fixture
def settings(settings: Settings, secret_manager_server: SecretManagerServer) -> Settings:
    return settings.model_copy(
        update={
            "tenant_secrets": "secret_manager",
            "gcp_project": PROJECT,
            "secret_manager_endpoint": secret_manager_server.host,
        }
    )


def _stored_bytes(settings: Settings) -> bytes:
    return b"".join(p.read_bytes() for p in Path(settings.store_dir).rglob("*") if p.is_file())


def test_the_stack_keeps_connector_and_shopify_secrets_in_secret_manager(
    stack: LocalStack, settings: Settings, secret_manager_server: SecretManagerServer
) -> None:
    # GIVEN a connector with credentials and a Shopify secret, set through the API
    api = Api(stack)
    owner = api.signup(slug="sm-shop")
    segment = RecordedMembership(stack.runtime).segment(owner.tenant_id)
    created = api.post(
        "/api/connectors/",
        {
            "name": "VIP",
            "type": "klaviyo",
            "segment_id": segment,
            "config": {"list_id": "Y6nRLr"},
            "credentials": {"api_key": API_KEY},
        },
        headers=owner.bearer,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    connector_id = created.get_json()["id"]
    shopify = f"/api/tenants/{owner.tenant_id}/integrations/shopify/"
    assert api.put(shopify, {"secret": SHOPIFY_SECRET}, headers=owner.bearer).status_code == 200
    # THEN each is one Secret Manager secret named tenant first, and the store holds neither
    base = f"projects/{PROJECT}/secrets/segops-t{owner.tenant_id}"
    assert set(secret_manager_server.secrets) == {f"{base}-connector-{connector_id}", f"{base}-shopify"}
    assert secret_manager_server.live_payloads(f"{base}-connector-{connector_id}") == [API_KEY.encode()]
    raw = _stored_bytes(settings)
    assert API_KEY.encode() not in raw and SHOPIFY_SECRET.encode() not in raw
    assert api.get(shopify, headers=owner.bearer).get_json()["secret_set"] is True
    # AND a webhook signed with the secret is verified against Secret Manager's copy
    case = shopify_webhook("orders/create")
    headers = dict(case.headers) | {"X-Shopify-Hmac-SHA256": sign(SHOPIFY_SECRET, case.body)}
    path = f"/api/ingestion/shopify/{owner.tenant_slug}/"
    accepted = api.post(path, data=case.body, headers=headers | {"Content-Type": "application/json"})
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    # AND deleting the connector and the integration deletes their secrets (every version)
    assert api.delete(f"/api/connectors/{connector_id}/", headers=owner.bearer).status_code == 204
    assert api.delete(shopify, headers=owner.bearer).status_code == 204
    assert secret_manager_server.secrets == {}
    refused = api.post(path, data=case.body, headers=headers | {"Content-Type": "application/json"})
    assert_error(refused, 401)
