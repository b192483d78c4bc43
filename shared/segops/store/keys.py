"""Every control-plane key, built in one place. The layout (no listed prefix holds nested documents):

- `tenants/<t>/tenant`: `Tenant`; `tenant-slugs/<slug>`: `Pointer` to it (unique claim)
- `users/<u>`: `User`; `user-emails/<sha256(email)>`: `Pointer` to it (unique claim)
- `tenants/<t>/members/<u>`: `Membership`; `tenants/<t>/invitations/<i>`: `Invitation`, found from its
  mailed link by `invitation-tokens/<sha256(token)>`: `Pointer` to it (single use)
- `signups/<sha256(token)>`: `PendingSignup` awaiting its email's verification;
  `tenant-slug-reservations/<slug>`: `SlugReservation` holding the slug for it
- `refresh-families/<family>`: `RefreshFamily`, one sign-in's rotating refresh tokens
- `tenants/<t>/plan`: the tenant's `Plan` (quotas and rate limits; absent: the default plan)
- `tenants/<t>/api-keys/<k>`: `ApiKey`; `api-keys/<fingerprint>`: `Pointer` to it
- `tenants/<t>/segments/<s>`: `Segment`; `tenants/<t>/segment-versions/<s>/<n>`: `SegmentVersion`;
  `tenants/<t>/segment-computes/<s>`: `ComputeState`; `compute-tenants/<t>`: the tenant's `TenantQueue`;
  `tenants/<t>/membership-outbox/<stage>`: a compute's `Outbox` until its changes are delivered
- `tenants/<t>/connectors/<c>`: `Connector`; `tenants/<t>/connector-syncs/<c>/<n>`: `SyncRecord`;
  `tenants/<t>/connector-retries/<c>`: `RetryBacklog`
- `tenants/<t>/secrets/<secret id>`: a sealed tenant secret (`segops.tenant_secrets.sealed`; with
  Secret Manager the store holds none); `tenants/<t>/connector-secrets/<c>` and a `sealed_secret`
  (or `secret`) in the Shopify integration document: where earlier versions kept them, until
  `segops.tenant_secrets.upgrade` moves them
- `tenants/<t>/exports/<e>`: `Export`
- `tenants/<t>/integrations/shopify`: `ShopifyIntegration`; `tenants/<t>/shopify-orders/<order>`: `OrderOwner`
- `tenants/<t>/dead-letters/<topic>/<message id>`: `DeadLetter`, a bus message its consumer gave up on
  (`dead-letters/<topic>/<message id>` when the message names no tenant)
- `counters/<name>`: id counters: a kind's global id blocks (`id_blocks`) or one object's sequence

Emails appear only as digests: a key may be listed or logged, an address must not be.
"""

from __future__ import annotations

import hashlib
import re

_KEY = re.compile(r"[a-z0-9][a-z0-9_.@-]*(/[a-z0-9][a-z0-9_.@-]*)*")

COMPUTE_QUEUES_PREFIX = "compute-tenants/"
TENANTS_PREFIX = "tenants/"


def validate_key(key: str) -> str:
    """Keys are built by code from ids and hashes; this guards against path tricks all the same."""
    # fullmatch: `$` would let a trailing newline through.
    if not _KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"invalid store key {key!r}")
    return key


def email_digest(email: str) -> str:
    """An address as keys and documents hold it: the digest of its normalised form."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def tenant_key(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/tenant"


def slug_key(slug: str) -> str:
    return f"tenant-slugs/{slug}"


def user_key(user_id: int) -> str:
    return f"users/{user_id}"


def user_email_key(email: str) -> str:
    return f"user-emails/{email_digest(email)}"


def tenant_member_key(tenant_id: int, user_id: int) -> str:
    return f"{tenant_members_prefix(tenant_id)}{user_id}"


def tenant_members_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/members/"


def invitation_key(tenant_id: int, invitation_id: int) -> str:
    return f"{invitations_prefix(tenant_id)}{invitation_id}"


def invitations_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/invitations/"


def invitation_token_key(token_digest: str) -> str:
    return f"invitation-tokens/{token_digest}"


def signup_key(token_digest: str) -> str:
    return f"signups/{token_digest}"


def slug_reservation_key(slug: str) -> str:
    return f"tenant-slug-reservations/{slug}"


def refresh_family_key(family: str) -> str:
    return f"refresh-families/{family}"


def api_key_key(tenant_id: int, key_id: int) -> str:
    return f"{api_keys_prefix(tenant_id)}{key_id}"


def api_keys_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/api-keys/"


def api_key_index_key(fingerprint: str) -> str:
    return f"api-keys/{fingerprint}"


def plan_key(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/plan"


def segment_key(tenant_id: int, segment_id: int) -> str:
    return f"{segments_prefix(tenant_id)}{segment_id}"


def segments_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/segments/"


def segment_version_key(tenant_id: int, segment_id: int, version: int) -> str:
    return f"{segment_versions_prefix(tenant_id, segment_id)}{version}"


def segment_versions_prefix(tenant_id: int, segment_id: int) -> str:
    return f"tenants/{tenant_id}/segment-versions/{segment_id}/"


def compute_state_key(tenant_id: int, segment_id: int) -> str:
    return f"tenants/{tenant_id}/segment-computes/{segment_id}"


def compute_queue_key(tenant_id: int) -> str:
    return f"{COMPUTE_QUEUES_PREFIX}{tenant_id}"


def membership_outbox_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/membership-outbox/"


def membership_outbox_key(tenant_id: int, stage_id: str) -> str:
    return f"{membership_outbox_prefix(tenant_id)}{stage_id}"


def connector_key(tenant_id: int, connector_id: int) -> str:
    return f"{connectors_prefix(tenant_id)}{connector_id}"


def connectors_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/connectors/"


def tenant_secret_key(tenant_id: int, secret_id: str) -> str:
    return f"tenants/{tenant_id}/secrets/{secret_id}"


def earlier_connector_secret_key(tenant_id: int, connector_id: int) -> str:
    return f"{earlier_connector_secrets_prefix(tenant_id)}{connector_id}"


def earlier_connector_secrets_prefix(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/connector-secrets/"


_EARLIER_SECRET = re.compile(r"tenants/([0-9]+)/(?:connector-secrets/([0-9]+)|integrations/shopify)")


def earlier_secret_holder(key: str) -> tuple[int, int | None] | None:
    """(tenant, connector id) of a key (listed under `TENANTS_PREFIX`) where earlier versions kept a
    connector's API key, (tenant, None) for the Shopify integration document; None for any other."""
    found = _EARLIER_SECRET.fullmatch(key)
    if found is None:
        return None
    return int(found[1]), None if found[2] is None else int(found[2])


def connector_sync_key(tenant_id: int, connector_id: int, sync_id: int) -> str:
    return f"{connector_syncs_prefix(tenant_id, connector_id)}{sync_id}"


def connector_syncs_prefix(tenant_id: int, connector_id: int) -> str:
    return f"tenants/{tenant_id}/connector-syncs/{connector_id}/"


def connector_sync_sequence(tenant_id: int, connector_id: int) -> str:
    """The counter (`counter_key`) numbering one connector's syncs."""
    return f"connector-syncs-t{tenant_id}-c{connector_id}"


def connector_retries_key(tenant_id: int, connector_id: int) -> str:
    return f"tenants/{tenant_id}/connector-retries/{connector_id}"


def export_key(tenant_id: int, export_id: int) -> str:
    return f"tenants/{tenant_id}/exports/{export_id}"


def shopify_integration_key(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/integrations/shopify"


def shopify_order_owner_key(tenant_id: int, order_id: str) -> str:
    return f"tenants/{tenant_id}/shopify-orders/{order_id}"


def counter_key(name: str) -> str:
    return f"counters/{name}"


def dead_letters_prefix(tenant_id: int | None, topic: str) -> str:
    return f"tenants/{tenant_id}/dead-letters/{topic}/" if tenant_id is not None else f"dead-letters/{topic}/"


def is_tenant_dead_letter_key(key: str, topic: str) -> bool:
    """Whether `key` (listed under `TENANTS_PREFIX`) is some tenant's dead letter of `topic`."""
    return re.fullmatch(rf"tenants/[0-9]+/dead-letters/{re.escape(topic)}/[^/]+", key) is not None


def dead_letter_key(tenant_id: int | None, topic: str, message_id: str) -> str:
    return f"{dead_letters_prefix(tenant_id, topic)}{message_id}"
