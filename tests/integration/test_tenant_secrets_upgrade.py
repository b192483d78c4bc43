"""`python -m segops.ops secrets migrate`: credentials that earlier versions kept in the control-plane
store (sealed connector-secrets documents, the sealed field of the Shopify integration document, and
the plaintext fields before sealing) move into the configured backend once — on the sealed local
backend and on Secret Manager (the real client over gRPC to the in-test server) — idempotently,
resumably after a crash, never overwriting a newer value, and never removing the earlier copy before
the backend returns it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from segops import vault
from segops.config import Settings
from segops.localstack import LocalStack
from segops.ops.__main__ import main as ops_main
from segops.shopify.signature import sign
from segops.store import keys
from segops.store.base import Store
from segops.tenant_secrets import connector_api_key, shopify_webhook_secret, upgrade

from tests.support.api import Account, Api, assert_error
from tests.support.fixtures import shopify_webhook
from tests.support.log_secrets import watch
from tests.support.membership import RecordedMembership
from tests.support.secret_manager import SecretManagerServer

PROJECT = "segops-upgrade"
SEALED_KEY = "pk_live_EARLIER_SEALED_5b0e7c"
PLAIN_KEY = "pk_live_EARLIER_PLAIN_91d2aa"
NEWER_KEY = "pk_live_SET_SINCE_UPGRADE_77c1"
SHOPIFY_SECRET = "shpss_EARLIER_SHOPIFY_3f08d1"
watch(SEALED_KEY, PLAIN_KEY, NEWER_KEY, SHOPIFY_SECRET)


@pytest.fixture(params=["sealed", "secret_manager"])
def settings(
    request: pytest.FixtureRequest, settings: Settings, secret_manager_server: SecretManagerServer
) -> Settings:
    if request.param == "sealed":
        return settings
    update = {"tenant_secrets": "secret_manager", "gcp_project": PROJECT}
    return settings.model_copy(update=update | {"secret_manager_endpoint": secret_manager_server.host})


def _connector(api: Api, owner: Account, segment: int) -> int:
    created = api.post(
        "/api/connectors/",
        {"name": "VIP", "type": "klaviyo", "segment_id": segment, "config": {"list_id": "Y6nRLr"}},
        headers=owner.bearer,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    return int(created.get_json()["id"])


def _earlier_shopify(stack: LocalStack, api: Api, owner: Account, body: dict[str, Any]) -> None:
    """The Shopify integration as an earlier version stored it: the secret inside the document."""
    shopify = f"/api/tenants/{owner.tenant_id}/integrations/shopify/"
    assert api.put(shopify, {"secret": "placeholder-secret"}, headers=owner.bearer).status_code == 200
    stack.runtime.tenant_secrets.delete(shopify_webhook_secret(owner.tenant_id))
    key = keys.shopify_integration_key(owner.tenant_id)
    document = stack.runtime.store.get(key)
    assert document is not None
    stack.runtime.store.put(key, document.body | body)


def _cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    monkeypatch.setenv("SEGOPS_ENVIRONMENT", "test")
    monkeypatch.setenv("SEGOPS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SEGOPS_TENANT_SECRETS", settings.tenant_secrets)
    monkeypatch.setenv("SEGOPS_GCP_PROJECT", settings.gcp_project)
    monkeypatch.setenv("SEGOPS_SECRET_MANAGER_ENDPOINT", settings.secret_manager_endpoint)
    code = ops_main(["secrets", "migrate", *args])
    return code, orjson.loads(capsys.readouterr().out.splitlines()[-1])


def _counts(moved: int = 0, superseded: int = 0, orphaned: int = 0, failed: int = 0) -> dict[str, int]:
    return {"moved": moved, "superseded": superseded, "orphaned": orphaned, "failed": failed}


def _stored_bytes(settings: Settings) -> bytes:
    return b"".join(p.read_bytes() for p in Path(settings.store_dir).rglob("*") if p.is_file())


def test_earlier_secrets_move_into_the_backend_once(
    stack: LocalStack, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a tenant whose connectors and Shopify secret an earlier version stored: one sealed, one
    # from before sealing (plaintext), the Shopify secret sealed in its document ...
    api = Api(stack)
    owner = api.signup(slug="upgraded")
    tenant = owner.tenant_id
    segment = RecordedMembership(stack.runtime).segment(tenant)
    sealed_id, plain_id = _connector(api, owner, segment), _connector(api, owner, segment)
    store = stack.runtime.store
    sealed = vault.seal(stack.runtime.connector_secrets_key, SEALED_KEY)
    store.put(keys.earlier_connector_secret_key(tenant, sealed_id), {"sealed_api_key": sealed})
    store.put(keys.earlier_connector_secret_key(tenant, plain_id), {"api_key": PLAIN_KEY})
    sealed_shopify = vault.seal(stack.runtime.shopify_secrets_key, SHOPIFY_SECRET)
    _earlier_shopify(stack, api, owner, {"sealed_secret": sealed_shopify})
    # ... a connector deleted since the upgrade (the new code never knew its earlier document) ...
    store.put(keys.earlier_connector_secret_key(tenant, 999), {"api_key": PLAIN_KEY})
    # ... and another tenant's leftover
    store.put(keys.earlier_connector_secret_key(tenant + 1, 5), {"api_key": PLAIN_KEY})
    case = shopify_webhook("orders/create")
    headers = dict(case.headers) | {"X-Shopify-Hmac-SHA256": sign(SHOPIFY_SECRET, case.body)}
    headers |= {"Content-Type": "application/json"}
    webhook = f"/api/ingestion/shopify/{owner.tenant_slug}/"
    assert_error(api.post(webhook, data=case.body, headers=headers), 401)  # the new code does not read them
    earlier = sorted(store.list(keys.TENANTS_PREFIX))

    # WHEN the operator looks first: nothing changes
    code, report = _cli(monkeypatch, settings, capsys, "--tenant", str(tenant), "--dry-run")
    assert (code, report) == (0, {"dry_run": True, **_counts(moved=3, orphaned=1), "failures": []})
    assert sorted(store.list(keys.TENANTS_PREFIX)) == earlier
    assert stack.runtime.tenant_secrets.get(connector_api_key(tenant, sealed_id)) is None

    # WHEN the tenant's secrets are migrated
    code, report = _cli(monkeypatch, settings, capsys, "--tenant", str(tenant))
    assert (code, report) == (0, {"dry_run": False, **_counts(moved=3, orphaned=1), "failures": []})
    # THEN the backend holds each credential, the store no earlier copy, and the app reads them
    secrets = stack.runtime.tenant_secrets
    assert secrets.get(connector_api_key(tenant, sealed_id)) == SEALED_KEY
    assert secrets.get(connector_api_key(tenant, plain_id)) == PLAIN_KEY
    assert secrets.get(shopify_webhook_secret(tenant)) == SHOPIFY_SECRET
    assert secrets.get(connector_api_key(tenant, 999)) is None
    assert store.list(keys.earlier_connector_secrets_prefix(tenant)) == []
    integration = store.get(keys.shopify_integration_key(tenant))
    assert integration is not None and set(integration.body) == {"updated_at", "updated_by"}
    accepted = api.post(webhook, data=case.body, headers=headers)
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    # AND the other tenant's leftover waited for a run over every tenant
    assert store.list(keys.earlier_connector_secrets_prefix(tenant + 1)) != []

    # WHEN run again over every tenant: only the other tenant's orphan is left to do, then nothing
    assert _cli(monkeypatch, settings, capsys)[1] == {"dry_run": False, **_counts(orphaned=1), "failures": []}
    assert _cli(monkeypatch, settings, capsys)[1] == {"dry_run": False, **_counts(), "failures": []}
    raw = _stored_bytes(settings)
    assert not any(value.encode() in raw for value in (SEALED_KEY, PLAIN_KEY, SHOPIFY_SECRET))


class _CrashingStore:
    """The real store, except that the process "dies" when it is about to remove an earlier copy."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def delete(self, key: str, if_generation: int | None = None) -> None:
        raise SystemExit("killed between writing the secret and removing the earlier copy")


def test_a_run_that_died_after_writing_is_completed_by_the_next_without_a_second_write(
    stack: LocalStack, settings: Settings, secret_manager_server: SecretManagerServer
) -> None:
    # GIVEN an earlier sealed connector secret, and a first run killed before it removed the copy
    api = Api(stack)
    owner = api.signup(slug="resumed")
    connector = _connector(api, owner, RecordedMembership(stack.runtime).segment(owner.tenant_id))
    store, secrets = stack.runtime.store, stack.runtime.tenant_secrets
    earlier = keys.earlier_connector_secret_key(owner.tenant_id, connector)
    store.put(earlier, {"sealed_api_key": vault.seal(stack.runtime.connector_secrets_key, SEALED_KEY)})
    sealing = {"connector": stack.runtime.connector_secrets_key, "shopify": stack.runtime.shopify_secrets_key}
    crashing: Any = _CrashingStore(store)
    with pytest.raises(SystemExit):
        upgrade.migrate(crashing, secrets, sealing)
    name = connector_api_key(owner.tenant_id, connector)
    assert secrets.get(name) == SEALED_KEY and store.get(earlier) is not None
    # WHEN run again
    report = upgrade.migrate(store, secrets, sealing)
    # THEN it completes the move without writing the secret again, and nothing is left to do
    assert dict(report.outcomes) == {"moved": 1} and store.get(earlier) is None
    assert secrets.get(name) == SEALED_KEY
    if settings.tenant_secrets == "secret_manager":
        path = f"projects/{PROJECT}/secrets/segops-t{owner.tenant_id}-connector-{connector}"
        assert [v.state for v in secret_manager_server.versions[path]] == ["ENABLED"]
    assert dict(upgrade.migrate(store, secrets, sealing).outcomes) == {}


def test_a_value_set_since_the_upgrade_is_kept(stack: LocalStack) -> None:
    # GIVEN an earlier copy, and a newer key the tenant has set through the API since the upgrade
    api = Api(stack)
    owner = api.signup(slug="newer")
    connector = _connector(api, owner, RecordedMembership(stack.runtime).segment(owner.tenant_id))
    earlier = keys.earlier_connector_secret_key(owner.tenant_id, connector)
    stack.runtime.store.put(earlier, {"api_key": PLAIN_KEY})
    patched = api.patch(f"/api/connectors/{connector}/", {"credentials": {"api_key": NEWER_KEY}}, headers=owner.bearer)
    assert patched.status_code == 200, patched.get_data(as_text=True)
    sealing = {"connector": stack.runtime.connector_secrets_key, "shopify": stack.runtime.shopify_secrets_key}
    # WHEN migrated
    report = upgrade.migrate(stack.runtime.store, stack.runtime.tenant_secrets, sealing)
    # THEN the newer key stays and the earlier copy is discarded
    assert dict(report.outcomes) == {"superseded": 1}
    assert stack.runtime.tenant_secrets.get(connector_api_key(owner.tenant_id, connector)) == NEWER_KEY
    assert stack.runtime.store.get(earlier) is None


def test_a_secret_that_does_not_open_is_left_in_place_and_the_command_fails(
    stack: LocalStack, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN an earlier copy sealed under a key this deployment no longer has
    api = Api(stack)
    owner = api.signup(slug="lost-key")
    connector = _connector(api, owner, RecordedMembership(stack.runtime).segment(owner.tenant_id))
    earlier = keys.earlier_connector_secret_key(owner.tenant_id, connector)
    stack.runtime.store.put(earlier, {"sealed_api_key": vault.seal(vault.new_key(), SEALED_KEY)})
    # WHEN migrated
    code, report = _cli(monkeypatch, settings, capsys)
    # THEN it says which and why, exits 1, and keeps the earlier copy for a run with the right key
    assert code == 1 and report["failed"] == 1 and report["moved"] == 0
    (failure,) = report["failures"]
    assert (failure["tenant_id"], failure["kind"], failure["object_id"]) == (owner.tenant_id, "connector", connector)
    assert "does not open" in failure["reason"] and "SEGOPS_CONNECTOR_SECRETS_KEY" in failure["reason"]
    assert stack.runtime.store.get(earlier) is not None
    assert stack.runtime.tenant_secrets.get(connector_api_key(owner.tenant_id, connector)) is None


@pytest.mark.parametrize("argv", [["secrets"], ["secrets", "migrate", "--tenant", "x1"]])
def test_the_command_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        ops_main(argv)
    assert exited.value.code == 2
