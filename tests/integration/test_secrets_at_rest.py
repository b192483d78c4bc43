"""Tenant secrets at rest and authenticating cache entries, against the real store files and a real
Valkey: no stored byte holds a connector or Shopify secret, and a record written straight into Valkey
by someone without the signing key authenticates nobody."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from segops import vault
from segops.auth import api_keys
from segops.config import Settings
from segops.localstack import LocalStack
from segops.tenancy import models as tm

from tests.support.api import Api, assert_error
from tests.support.log_secrets import watch
from tests.support.membership import RecordedMembership

CONNECTOR_KEY = "pk_live_CONNECTOR_SECRET_7f3a91"
SHOPIFY_SECRET = "shpss_SHOPIFY_SECRET_0c55e2"
watch(CONNECTOR_KEY, SHOPIFY_SECRET)


@pytest.fixture
def settings(settings: Settings, valkey_url: str) -> Settings:
    return settings.model_copy(update={"cache": "redis", "redis_url": valkey_url})


@pytest.fixture
def valkey(valkey_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(valkey_url)
    yield client
    client.close()


def _stored_bytes(settings: Settings) -> bytes:
    return b"".join(p.read_bytes() for p in Path(settings.store_dir).rglob("*") if p.is_file())


def test_connector_and_shopify_secrets_are_stored_sealed(stack: LocalStack, settings: Settings) -> None:
    # GIVEN a connector with credentials and a Shopify secret, set through the API
    api = Api(stack)
    owner = api.signup()
    segment = RecordedMembership(stack.runtime).segment(owner.tenant_id)
    created = api.post(
        "/api/connectors/",
        {
            "name": "VIP",
            "type": "klaviyo",
            "segment_id": segment,
            "config": {"list_id": "Y6nRLr"},
            "credentials": {"api_key": CONNECTOR_KEY},
        },
        headers=owner.bearer,
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    shopify = f"/api/tenants/{owner.tenant_id}/integrations/shopify/"
    assert api.put(shopify, {"secret": SHOPIFY_SECRET}, headers=owner.bearer).status_code == 200
    # THEN no byte of the control-plane store holds either secret
    raw = _stored_bytes(settings)
    assert CONNECTOR_KEY.encode() not in raw and SHOPIFY_SECRET.encode() not in raw
    # AND the stored documents hold values that open only with their own key
    secrets = f"tenants/{owner.tenant_id}/secrets/local-t{owner.tenant_id}"
    connector_doc = stack.runtime.store.get(f"{secrets}-connector-{created.get_json()['id']}")
    assert connector_doc is not None and set(connector_doc.body) == {"sealed"}
    sealed = connector_doc.body["sealed"]
    assert vault.unseal(stack.runtime.connector_secrets_key, sealed) == CONNECTOR_KEY
    with pytest.raises(vault.SecretUnavailable):
        vault.unseal(stack.runtime.shopify_secrets_key, sealed)
    shopify_doc = stack.runtime.store.get(f"{secrets}-shopify")
    assert shopify_doc is not None and set(shopify_doc.body) == {"sealed"}
    assert vault.unseal(stack.runtime.shopify_secrets_key, shopify_doc.body["sealed"]) == SHOPIFY_SECRET


def test_a_forged_api_key_record_written_into_valkey_is_401(stack: LocalStack, valkey: redis.Redis) -> None:
    # GIVEN a victim tenant, and an attacker able to write to Valkey but without the signing key
    api = Api(stack)
    victim = api.signup()
    forged_secret = api_keys.generate()
    fingerprint = api_keys.fingerprint(forged_secret)
    record = tm.ApiKey(
        id=999, tenant_id=victim.tenant_id, name="x", prefix="sk_live_x", fingerprint=fingerprint, role="owner"
    ).model_dump_json()
    wrong_mac = hashlib.sha256(record.encode()).hexdigest()
    for value in (record, f"{wrong_mac}.{record}"):
        valkey.set(f"apikey:{fingerprint}", value.encode(), px=60_000)
        # WHEN the forged key is presented THEN it authenticates nobody
        response = api.get("/api/segments/", headers={"Authorization": f"ApiKey {forged_secret}"})
        assert_error(response, 401, "unauthorized")
    # AND a real key still authenticates, through a signed entry
    assert api.get("/api/segments/", headers=victim.key).status_code == 200
    stored = valkey.get(f"apikey:{api_keys.fingerprint(victim.api_key)}")
    assert stored is not None and stored.split(b".", 1)[0] != b"" and b'"role":"admin"' in stored
    # AND a valid signed entry copied under another fingerprint is refused too
    valkey.set(f"apikey:{fingerprint}", stored, px=60_000)
    assert_error(api.get("/api/segments/", headers={"Authorization": f"ApiKey {forged_secret}"}), 401)
