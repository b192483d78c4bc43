"""Least privilege for tenant secrets and the keys that guard the API-key cache: the manifest (which
Terraform turns into per-secret and per-kind `secretAccessor` grants) gives each to exactly the
functions that use it, and a function deployed without a key fails closed instead of using an empty one."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from segops import vault
from segops.cache.memory import MemoryCache
from segops.cache.signed import SignedEntries
from segops.config import Settings
from segops.manifest import TenantSecretKind, load_manifest
from segops.runtime import build_runtime
from segops.tenant_secrets.base import SecretKind

EXPECTED = {
    # every function with a route that accepts `ApiKey` authentication
    "cache-signing-key": {"api", "sandbox", "membership", "track", "track_batch", "segment_compat"},
}
# api stores both kinds (connector credentials, the Shopify secret) and never reads them back; the
# syncs read connector API keys, the webhook the Shopify secret.
TENANT_SECRETS = {
    "api": {"connector": "write", "shopify": "write"},
    "connector_sync": {"connector": "read"},
    "connector_full_sync": {"connector": "read"},
    "shopify_webhook": {"shopify": "read"},
}


def test_tenant_secrets_are_granted_by_kind_to_exactly_their_users() -> None:
    granted = {f.name: dict(f.tenant_secrets) for f in load_manifest().functions if f.tenant_secrets}
    assert granted == TENANT_SECRETS
    # the manifest's kinds are the code's
    assert set(typing.get_args(TenantSecretKind)) == set(typing.get_args(SecretKind))


def test_each_key_is_granted_to_exactly_the_functions_that_use_it() -> None:
    manifest = load_manifest()
    for secret, functions in EXPECTED.items():
        assert {f.name for f in manifest.functions if secret in f.secrets} == functions, secret


def test_a_function_without_a_key_fails_closed(tmp_path: Path) -> None:
    # GIVEN a production function on the sealed backend holding the connector key only
    key = vault.new_key()
    runtime = build_runtime(
        Settings(environment="production", data_dir=tmp_path, uses=["store"], connector_secrets_key=key)
    )
    assert runtime.connector_secrets_key == key
    assert runtime.shopify_secrets_key == "" and runtime.cache_signing_key == ""
    # THEN it opens connector secrets, and refuses to seal or open anything with the keys it lacks
    assert vault.unseal(runtime.connector_secrets_key, vault.seal(key, "pk_live_x")) == "pk_live_x"
    with pytest.raises(vault.SecretUnavailable):
        vault.seal(runtime.shopify_secrets_key, "shpss_x")
    with pytest.raises(vault.SecretUnavailable):
        vault.unseal(runtime.shopify_secrets_key, vault.seal(vault.new_key(), "shpss_x"))
    with pytest.raises(RuntimeError, match="SEGOPS_CACHE_SIGNING_KEY"):
        SignedEntries(MemoryCache(), runtime.cache_signing_key)


def test_rotation_opens_old_values_and_seals_with_the_newest_key() -> None:
    old, new = vault.new_key(), vault.new_key()
    sealed_before = vault.seal(old, "pk_live_rotated")
    # WHEN the setting becomes "<new>,<old>" THEN old values still open and new ones need only <new>
    assert vault.unseal(f"{new},{old}", sealed_before) == "pk_live_rotated"
    assert vault.unseal(new, vault.seal(f"{new},{old}", "pk_live_rotated")) == "pk_live_rotated"
    with pytest.raises(vault.SecretUnavailable):
        vault.unseal(new, sealed_before)
