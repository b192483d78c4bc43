"""Tenancy operations. All writes are CAS-safe: concurrent signups with one slug → exactly one wins."""

from __future__ import annotations

import hmac
import re
from datetime import timedelta

import orjson

from segops import clock
from segops.auth import api_keys, tokens
from segops.auth.roles import Role, can_grant
from segops.cache.signed import SignedEntries
from segops.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from segops.runtime import Runtime
from segops.store import keys
from segops.store.base import GenerationMismatch
from segops.tenancy import models as m

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
API_KEY_CACHE_PREFIX = "apikey:"


def token_pair(runtime: Runtime, user_id: int) -> dict[str, object]:
    settings = runtime.settings
    return {
        "access": tokens.issue(runtime.jwt_secret, user_id, "access", timedelta(minutes=settings.access_token_minutes)),
        "refresh": tokens.issue(runtime.jwt_secret, user_id, "refresh", timedelta(days=settings.refresh_token_days)),
        "expires_in": settings.access_token_minutes * 60,
    }


def refresh_access(runtime: Runtime, refresh_token: str) -> dict[str, object]:
    user_id = tokens.verify(runtime.jwt_secret, refresh_token, "refresh")
    if runtime.documents.load(keys.user_key(user_id), m.User) is None:
        raise Unauthorized("invalid token")
    minutes = runtime.settings.access_token_minutes
    return {
        "access": tokens.issue(runtime.jwt_secret, user_id, "access", timedelta(minutes=minutes)),
        "expires_in": minutes * 60,
    }


def login(runtime: Runtime, email: str, password: str) -> m.User:
    docs = runtime.documents
    pointer = docs.load(keys.user_email_key(email), m.Pointer)
    user = docs.load(keys.user_key(pointer.id), m.User) if pointer else None
    if not runtime.passwords.verify(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("invalid email or password")
    return user


def create_tenant(runtime: Runtime, slug: str, name: str, owner_id: int) -> m.Tenant:
    if not SLUG.match(slug):
        raise ValidationFailed(
            "tenant_slug must match ^[a-z][a-z0-9-]{1,62}$",
            {"errors": [{"pointer": "/tenant_slug", "message": "invalid slug"}]},
        )
    docs = runtime.documents
    tenant_id = docs.next_id("tenants")
    try:
        runtime.store.put(keys.slug_key(slug), m.Pointer(id=tenant_id).model_dump(), if_generation=0)
    except GenerationMismatch:
        raise Conflict("tenant slug is taken", {"tenant_slug": slug}) from None
    tenant = m.Tenant(id=tenant_id, slug=slug, name=name or slug)
    docs.save(keys.tenant_key(tenant_id), tenant)
    add_member(runtime, tenant_id, owner_id, "owner")
    return tenant


def signup(runtime: Runtime, email: str, password: str, slug: str, name: str | None) -> tuple[m.User, m.Tenant]:
    docs = runtime.documents
    email = email.strip()
    if not SLUG.match(slug):
        raise ValidationFailed(
            "tenant_slug must match ^[a-z][a-z0-9-]{1,62}$",
            {"errors": [{"pointer": "/tenant_slug", "message": "invalid slug"}]},
        )
    if runtime.store.get(keys.slug_key(slug)) is not None:
        raise Conflict("tenant slug is taken", {"tenant_slug": slug})
    password_hash = runtime.passwords.hash(password)
    user_id = docs.next_id("users")
    try:
        runtime.store.put(keys.user_email_key(email), m.Pointer(id=user_id).model_dump(), if_generation=0)
    except GenerationMismatch:
        raise Conflict("email is already registered", {"email": email}) from None
    user = m.User(id=user_id, email=email, password_hash=password_hash)
    docs.save(keys.user_key(user_id), user)
    try:
        tenant = create_tenant(runtime, slug, name or slug, user_id)
    except Conflict:
        runtime.store.delete(keys.user_key(user_id))
        runtime.store.delete(keys.user_email_key(email))
        raise
    _accept_invitations(runtime, user)
    refreshed = docs.load(keys.user_key(user_id), m.User)
    assert refreshed is not None
    return refreshed, tenant


def _accept_invitations(runtime: Runtime, user: m.User) -> None:
    docs = runtime.documents
    for key in runtime.store.list(keys.invitation_index_prefix(user.email)):
        tenant_id = int(key.rsplit("/", 1)[1])
        invitation = docs.load(keys.invitation_key(tenant_id, user.email), m.Invitation)
        if invitation is not None:
            add_member(runtime, tenant_id, user.id, invitation.role)
            runtime.store.delete(keys.invitation_key(tenant_id, user.email))
        runtime.store.delete(key)


def add_member(runtime: Runtime, tenant_id: int, user_id: int, role: Role) -> m.Membership:
    docs = runtime.documents
    membership = m.Membership(tenant_id=tenant_id, user_id=user_id, role=role)
    docs.save(keys.tenant_member_key(tenant_id, user_id), membership)

    def link(user: m.User) -> m.User:
        if tenant_id not in user.tenant_ids:
            user.tenant_ids = sorted({*user.tenant_ids, tenant_id})
        return user

    docs.update(keys.user_key(user_id), m.User, link)
    return membership


def membership(runtime: Runtime, tenant_id: int, user_id: int) -> m.Membership | None:
    return runtime.documents.load(keys.tenant_member_key(tenant_id, user_id), m.Membership)


def tenant(runtime: Runtime, tenant_id: int) -> m.Tenant:
    found = runtime.documents.load(keys.tenant_key(tenant_id), m.Tenant)
    if found is None:
        raise NotFound("tenant not found")
    return found


def tenant_by_slug(runtime: Runtime, slug: str) -> m.Tenant | None:
    if not SLUG.match(slug):
        return None
    pointer = runtime.documents.load(keys.slug_key(slug), m.Pointer)
    return runtime.documents.load(keys.tenant_key(pointer.id), m.Tenant) if pointer else None


def user_tenants(runtime: Runtime, user_id: int) -> list[tuple[m.Tenant, Role]]:
    user = runtime.documents.load(keys.user_key(user_id), m.User)
    if user is None:
        return []
    found = []
    for tenant_id in user.tenant_ids:
        link = membership(runtime, tenant_id, user_id)
        if link is not None:
            found.append((tenant(runtime, tenant_id), link.role))
    return found


def list_members(runtime: Runtime, tenant_id: int) -> list[dict[str, object]]:
    docs = runtime.documents
    members: list[dict[str, object]] = []
    for link in docs.list(keys.tenant_members_prefix(tenant_id), m.Membership):
        user = docs.load(keys.user_key(link.user_id), m.User)
        if user is not None:
            members.append(
                {
                    "user_id": user.id,
                    "email": user.email,
                    "role": link.role,
                    "status": "active",
                    "created_at": link.created_at,
                }
            )
    for invitation in docs.list(keys.invitations_prefix(tenant_id), m.Invitation):
        members.append(
            {
                "user_id": None,
                "email": invitation.email,
                "role": invitation.role,
                "status": "invited",
                "created_at": invitation.created_at,
            }
        )
    return members


def invite(
    runtime: Runtime, tenant_id: int, granter_role: Role, granter_id: int, email: str, role: Role
) -> dict[str, object]:
    if not can_grant(granter_role, role):
        raise Forbidden(f"a {granter_role} cannot grant {role}")
    docs = runtime.documents
    pointer = docs.load(keys.user_email_key(email), m.Pointer)
    if pointer is not None:
        if membership(runtime, tenant_id, pointer.id) is not None:
            raise Conflict("already a member", {"email": email})
        add_member(runtime, tenant_id, pointer.id, role)
        return {"user_id": pointer.id, "email": email, "role": role, "status": "active"}
    invitation = m.Invitation(tenant_id=tenant_id, email=email.strip(), role=role, invited_by=granter_id)
    docs.save(keys.invitation_key(tenant_id, email), invitation)
    docs.save(keys.invitation_index_key(email, tenant_id), m.Pointer(id=granter_id, tenant_id=tenant_id))
    return {"user_id": None, "email": email, "role": role, "status": "invited"}


def _owners(runtime: Runtime, tenant_id: int) -> int:
    return sum(
        1
        for link in runtime.documents.list(keys.tenant_members_prefix(tenant_id), m.Membership)
        if link.role == "owner"
    )


def change_role(runtime: Runtime, tenant_id: int, granter_role: Role, user_id: int, role: Role) -> m.Membership:
    current = membership(runtime, tenant_id, user_id)
    if current is None:
        raise NotFound("member not found")
    if not can_grant(granter_role, current.role) or not can_grant(granter_role, role):
        raise Forbidden(f"a {granter_role} cannot change a {current.role} to {role}")
    if current.role == "owner" and role != "owner" and _owners(runtime, tenant_id) <= 1:
        raise Conflict("a tenant keeps at least one owner")
    current.role = role
    runtime.documents.save(keys.tenant_member_key(tenant_id, user_id), current)
    return current


def remove_member(runtime: Runtime, tenant_id: int, granter_role: Role, user_id: int) -> None:
    current = membership(runtime, tenant_id, user_id)
    if current is None:
        raise NotFound("member not found")
    if not can_grant(granter_role, current.role):
        raise Forbidden(f"a {granter_role} cannot remove a {current.role}")
    if current.role == "owner" and _owners(runtime, tenant_id) <= 1:
        raise Conflict("a tenant keeps at least one owner")
    runtime.store.delete(keys.tenant_member_key(tenant_id, user_id))

    def unlink(user: m.User) -> m.User:
        user.tenant_ids = [t for t in user.tenant_ids if t != tenant_id]
        return user

    runtime.documents.update(keys.user_key(user_id), m.User, unlink)


def create_api_key(
    runtime: Runtime, tenant_id: int, name: str, role: Role, granter_role: Role, created_by: int | None
) -> tuple[m.ApiKey, str]:
    if role == "owner" or (role == "admin" and granter_role != "owner"):
        raise Forbidden(f"a {granter_role} cannot create a key with role {role}")
    secret = api_keys.generate()
    key_id = runtime.documents.next_id("api-keys")
    record = m.ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        name=name,
        prefix=api_keys.display_prefix(secret),
        fingerprint=api_keys.fingerprint(secret),
        role=role,
        created_by=created_by,
    )
    runtime.documents.save(keys.api_key_key(tenant_id, key_id), record)
    runtime.documents.create(keys.api_key_index_key(record.fingerprint), m.Pointer(id=key_id, tenant_id=tenant_id))
    return record, secret


def list_api_keys(runtime: Runtime, tenant_id: int) -> list[m.ApiKey]:
    return runtime.documents.list(keys.api_keys_prefix(tenant_id), m.ApiKey)


def revoke_api_key(runtime: Runtime, tenant_id: int, key_id: int) -> None:
    docs = runtime.documents
    record = docs.load(keys.api_key_key(tenant_id, key_id), m.ApiKey)
    if record is None or record.revoked_at is not None:
        raise NotFound("api key not found")
    record.revoked_at = clock.now()
    docs.save(keys.api_key_key(tenant_id, key_id), record)
    runtime.store.delete(keys.api_key_index_key(record.fingerprint))
    runtime.cache.delete(API_KEY_CACHE_PREFIX + record.fingerprint)


def resolve_api_key(runtime: Runtime, secret: str) -> m.ApiKey:
    """The active key for a presented secret. Cached briefly; revocation also evicts the entry."""
    if not api_keys.looks_like_key(secret):
        raise Unauthorized("invalid API key")
    fingerprint = api_keys.fingerprint(secret)
    cache_key = API_KEY_CACHE_PREFIX + fingerprint
    # Signed: a record written into Valkey by anyone without the signing key is a miss, not a login.
    cache = SignedEntries(runtime.cache, runtime.cache_signing_key)
    cached = cache.get(cache_key)
    if cached is not None:
        if cached == b"-":
            raise Unauthorized("invalid API key")
        return m.ApiKey.model_validate(orjson.loads(cached))
    ttl = runtime.settings.api_key_cache_seconds
    pointer = runtime.documents.load(keys.api_key_index_key(fingerprint), m.Pointer)
    record = (
        runtime.documents.load(keys.api_key_key(pointer.tenant_id, pointer.id), m.ApiKey)
        if pointer is not None and pointer.tenant_id is not None
        else None
    )
    if record is None or record.revoked_at is not None or not hmac.compare_digest(record.fingerprint, fingerprint):
        cache.set(cache_key, b"-", ttl)
        raise Unauthorized("invalid API key")
    cache.set(cache_key, record.model_dump_json().encode(), ttl)
    _touch(runtime, record)
    return record


def _touch(runtime: Runtime, record: m.ApiKey) -> None:
    """Record `last_used_at` at most once a minute per key."""
    if runtime.cache.add(f"apikey-used:{record.id}", b"1", 60):

        def stamp(current: m.ApiKey) -> m.ApiKey:
            current.last_used_at = clock.now()
            return current

        runtime.documents.update(keys.api_key_key(record.tenant_id, record.id), m.ApiKey, stamp)
