"""`segops.store.keys`: the one place control-plane keys are built."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from segops.store import keys

PACKAGE = Path(keys.__file__).resolve().parents[1]
EMAIL = "Ada.Lovelace+segops@Example.com"

TENANT_KEYS = [
    keys.tenant_key(7),
    keys.tenant_member_key(7, 3),
    keys.invitation_key(7, 8),
    keys.api_key_key(7, 9),
    keys.segment_key(7, 11),
    keys.segment_version_key(7, 11, 2),
    keys.compute_state_key(7, 11),
    keys.connector_key(7, 5),
    keys.tenant_secret_key(7, "local-t7-connector-5"),
    keys.connector_sync_key(7, 5, 13),
    keys.export_key(7, 4),
    keys.shopify_integration_key(7),
    keys.shopify_order_owner_key(7, "450789469"),
    keys.connector_retries_key(7, 5),
    keys.dead_letter_key(7, "events", "c0ffee01"),
]
GLOBAL_KEYS = [
    keys.slug_key("acme"),
    keys.user_key(3),
    keys.user_email_key(EMAIL),
    keys.invitation_token_key("ab" * 32),
    keys.signup_key("cd" * 32),
    keys.slug_reservation_key("acme"),
    keys.refresh_family_key("0f" * 16),
    keys.api_key_index_key("0f" * 32),
    keys.compute_queue_key(7),
    keys.counter_key("segments"),
    keys.counter_key(keys.connector_sync_sequence(7, 5)),
    keys.dead_letter_key(None, "segment-compute", "12345"),
]


def test_every_key_is_valid_and_tenant_keys_live_under_their_tenant() -> None:
    for key in TENANT_KEYS + GLOBAL_KEYS:
        assert keys.validate_key(key) == key
    assert all(key.startswith("tenants/7/") for key in TENANT_KEYS)
    assert not any(key.startswith("tenants/") for key in GLOBAL_KEYS)
    assert len(set(TENANT_KEYS + GLOBAL_KEYS)) == len(TENANT_KEYS + GLOBAL_KEYS)


def test_lists_use_the_prefix_of_their_keys() -> None:
    pairs = [
        (keys.tenant_members_prefix(7), keys.tenant_member_key(7, 3)),
        (keys.invitations_prefix(7), keys.invitation_key(7, 8)),
        (keys.api_keys_prefix(7), keys.api_key_key(7, 9)),
        (keys.segments_prefix(7), keys.segment_key(7, 11)),
        (keys.segment_versions_prefix(7, 11), keys.segment_version_key(7, 11, 2)),
        (keys.connectors_prefix(7), keys.connector_key(7, 5)),
        (keys.connector_syncs_prefix(7, 5), keys.connector_sync_key(7, 5, 13)),
        (keys.COMPUTE_QUEUES_PREFIX, keys.compute_queue_key(7)),
        (keys.dead_letters_prefix(7, "events"), keys.dead_letter_key(7, "events", "c0ffee01")),
        (keys.dead_letters_prefix(None, "events"), keys.dead_letter_key(None, "events", "c0ffee01")),
    ]
    for prefix, key in pairs:
        # the id is the whole remainder: a prefix never also matches a nested or a sibling list
        assert prefix.endswith("/") and key.startswith(prefix) and "/" not in key[len(prefix) :]
    assert not keys.segment_key(7, 11).startswith(keys.segments_prefix(71))
    assert not keys.tenant_member_key(71, 3).startswith(keys.tenant_members_prefix(7))


def test_tenant_dead_letters_are_told_apart_by_topic() -> None:
    assert keys.is_tenant_dead_letter_key(keys.dead_letter_key(7, "events", "c0ffee01"), "events")
    assert not keys.is_tenant_dead_letter_key(keys.dead_letter_key(7, "events", "c0ffee01"), "events-x")
    assert not keys.is_tenant_dead_letter_key(keys.dead_letter_key(None, "events", "c0ffee01"), "events")
    assert not keys.is_tenant_dead_letter_key(keys.segment_key(7, 11), "events")


def test_emails_appear_only_as_digests_of_their_normalised_form() -> None:
    key = keys.user_email_key(EMAIL)
    assert "@" not in key and "lovelace" not in key.lower()
    assert keys.user_email_key(EMAIL) == keys.user_email_key("  ada.lovelace+segops@example.com ")
    assert keys.email_digest(EMAIL) == keys.email_digest(" ADA.LOVELACE+segops@example.com")
    assert keys.user_email_key(EMAIL).endswith(keys.email_digest(EMAIL))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/tenants/1",
        "tenants/1/",
        "tenants//1",
        "tenants/../users/1",
        "tenants/1/..",
        "Tenants/1",
        "tenants/1\n",
        "tenants/1/a b",
        "tenants/1/%2e%2e",
        "tenants/1/\\x",
        ".hidden",
    ],
)
def test_hostile_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        keys.validate_key(key)


def test_no_module_builds_control_plane_keys_by_hand() -> None:
    # Literal key paths ("tenants/...", "users/...", ...) outside keys.py would fork the layout.
    top_levels = sorted({key.split("/", 1)[0] for key in TENANT_KEYS + GLOBAL_KEYS})
    alternatives = "|".join(map(re.escape, top_levels))
    by_hand = re.compile(rf"""["'](?:{alternatives})/""")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.resolve() != Path(keys.__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if by_hand.search(line)
    ]
    assert offenders == []
