"""Tenancy operations. All writes are CAS-safe: concurrent signups with one slug → exactly one wins."""

from __future__ import annotations

import contextlib
import hmac
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode

import orjson

from segops import clock
from segops.auth import api_keys
from segops.auth.roles import Role, can_grant
from segops.cache.base import CacheUnavailable
from segops.cache.memory import MemoryCache
from segops.cache.signed import SignedEntries
from segops.errors import Conflict, Forbidden, LoginRequired, NotFound, Unauthorized, invalid
from segops.mailer import Mail
from segops.runtime import Runtime
from segops.store import keys
from segops.store.base import GenerationMismatch
from segops.tenancy import models as m

SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
API_KEY_CACHE_PREFIX = "apikey:"
# API-key lookups of this process while the cache is down: one store read per key and
# `api_key_cache_seconds`, not two per request.
_keys_while_cache_down = MemoryCache(max_entries=10_000)


def login(runtime: Runtime, email: str, password: str) -> m.User:
    docs = runtime.documents
    pointer = docs.load(keys.user_email_key(email), m.Pointer)
    user = docs.load(keys.user_key(pointer.id), m.User) if pointer else None
    if not runtime.passwords.verify(user.password_hash if user else None, password) or user is None:
        raise Unauthorized("invalid email or password")
    return user


def _check_slug(slug: str, pointer: str) -> None:
    if not SLUG.match(slug):
        raise invalid(pointer, "must match ^[a-z][a-z0-9-]{1,62}$", "string_pattern_mismatch")


def _slug_taken(slug: str) -> Conflict:
    return Conflict("tenant slug is taken", {"tenant_slug": slug})


def _reserve_slug(runtime: Runtime, slug: str, signup: str, email: str, expires_at: datetime) -> None:
    """Hold `slug` for a pending signup. A live reservation for another address is a 409; the same
    address signing up again (a lost mail) takes it over, and only its newest link works."""
    reservation = m.SlugReservation(signup=signup, email_key=keys.email_digest(email), expires_at=expires_at)
    key = keys.slug_reservation_key(slug)
    current = runtime.store.get(key)
    if current is not None:
        held = m.SlugReservation.model_validate(current.body)
        if held.expires_at > clock.now() and held.email_key != reservation.email_key:
            raise _slug_taken(slug)
    try:
        runtime.store.put(key, reservation.model_dump(mode="json"), if_generation=current.generation if current else 0)
    except GenerationMismatch:
        raise _slug_taken(slug) from None
    if current is not None:
        # The link of the signup this one replaces stops working at once (404), not at its verification.
        runtime.store.delete(keys.signup_key(m.SlugReservation.model_validate(current.body).signup))


def create_tenant(
    runtime: Runtime, slug: str, name: str | None, owner_id: int, *, pointer: str = "/slug", signup: str = ""
) -> m.Tenant:
    """A tenant owned by `owner_id`; `signup` is the pending signup whose reservation may hold the slug."""
    _check_slug(slug, pointer)
    docs = runtime.documents
    reservation = docs.load(keys.slug_reservation_key(slug), m.SlugReservation)
    if reservation is not None and reservation.signup != signup and reservation.expires_at > clock.now():
        raise _slug_taken(slug)
    tenant_id = docs.new_id("tenants")
    try:
        runtime.store.put(keys.slug_key(slug), m.Pointer(id=tenant_id).model_dump(), if_generation=0)
    except GenerationMismatch:
        raise _slug_taken(slug) from None
    tenant = m.Tenant(id=tenant_id, slug=slug, name=name or slug)
    docs.save(keys.tenant_key(tenant_id), tenant)
    add_member(runtime, tenant_id, owner_id, "owner")
    if reservation is not None:
        runtime.store.delete(keys.slug_reservation_key(slug))
    return tenant


def _release_reservation(runtime: Runtime, slug: str, signup: str) -> None:
    """Free `slug` if `signup` still holds it (only that signup's own reservation, compared and deleted)."""
    key = keys.slug_reservation_key(slug)
    found = runtime.store.get(key)
    if found is not None and m.SlugReservation.model_validate(found.body).signup == signup:
        with contextlib.suppress(GenerationMismatch):
            runtime.store.delete(key, if_generation=found.generation)


def _link(runtime: Runtime, path: str, token: str) -> str:
    return f"{runtime.settings.base_url}{path}?{urlencode({'token': token})}"


def signup(runtime: Runtime, email: str, password: str, slug: str, name: str | None) -> None:
    """Start a signup: reserve the slug and mail a verification link. Whether the email is already
    registered changes only the mail's text (the caller sees the same answer), so it stays secret."""
    email = email.strip()
    _check_slug(slug, "/tenant_slug")
    if runtime.store.get(keys.slug_key(slug)) is not None:
        raise _slug_taken(slug)
    token = secrets.token_urlsafe(32)
    digest = m.token_digest(token)
    expires_at = clock.now() + timedelta(hours=runtime.settings.email_token_hours)
    # Reserved either way: a reservation that only unregistered emails made would reveal them.
    _reserve_slug(runtime, slug, digest, email, expires_at)
    # Hashed either way too, so both paths take the same time.
    password_hash = runtime.passwords.hash(password)
    if runtime.store.get(keys.user_email_key(email)) is not None:
        login = f"{runtime.settings.base_url}/login"
        runtime.mailer.send(
            Mail(
                to=email,
                subject="Someone tried to sign up to SegOps with your address",
                text="Someone (maybe you) tried to sign up to SegOps with this email address, which already has "
                f"an account. Log in instead: {login}\n\n"
                "If it was not you, you can ignore this message; nothing was changed.",
                links=[login],
            )
        )
        return
    pending = m.PendingSignup(
        email=email, password_hash=password_hash, tenant_slug=slug, tenant_name=name, expires_at=expires_at
    )
    runtime.documents.create(keys.signup_key(digest), pending)
    hours = runtime.settings.email_token_hours
    verify = _link(runtime, "/verify-email", token)
    runtime.mailer.send(
        Mail(
            to=email,
            subject="Verify your email to finish signing up to SegOps",
            text=f"Open this link to verify your address and create the tenant {slug}:\n\n{verify}\n\n"
            "It asks for the password you chose when you signed up. "
            f"The link works once, for {hours} hours. If you did not sign up, ignore this message.",
            links=[verify],
        )
    )


def _consume(runtime: Runtime, key: str) -> dict[str, object]:
    """Read and delete a single-use token document; of two concurrent consumers only one gets it."""
    found = runtime.store.get(key)
    if found is None:
        raise NotFound("this link is invalid, used or expired")
    _spend(runtime, key, found.generation)
    return found.body


def _spend(runtime: Runtime, key: str, generation: int) -> None:
    """Delete a single-use token document as it was read (`generation`): a consumer that lost the
    race to another gets the used link's 404."""
    try:
        runtime.store.delete(key, if_generation=generation)
    except GenerationMismatch:
        raise NotFound("this link is invalid, used or expired") from None


def _create_user(runtime: Runtime, email: str, password_hash: str) -> m.User:
    """A verified account; `LoginRequired` if the address already has one."""
    user_id = runtime.documents.new_id("users")
    try:
        runtime.store.put(keys.user_email_key(email), m.Pointer(id=user_id).model_dump(), if_generation=0)
    except GenerationMismatch:
        raise LoginRequired("this email address already has an account: log in with it") from None
    user = m.User(id=user_id, email=email.strip(), password_hash=password_hash)
    runtime.documents.save(keys.user_key(user_id), user)
    return user


def create_account(
    runtime: Runtime, email: str, password_hash: str, slug: str, name: str | None, signup: str = ""
) -> tuple[m.User, m.Tenant]:
    """A verified user and the tenant they own; nothing is left behind when the slug is lost, and the
    slug is not held when the address got an account meanwhile (another of its signups verified first)."""
    try:
        user = _create_user(runtime, email, password_hash)
    except LoginRequired:
        _release_reservation(runtime, slug, signup)
        raise
    try:
        tenant = create_tenant(runtime, slug, name, user.id, pointer="/tenant_slug", signup=signup)
    except Conflict:
        runtime.store.delete(keys.user_key(user.id))
        runtime.store.delete(keys.user_email_key(email))
        raise
    refreshed = runtime.documents.load(keys.user_key(user.id), m.User)
    assert refreshed is not None
    return refreshed, tenant


def verify_email(runtime: Runtime, token: str, password: str) -> tuple[m.User, m.Tenant]:
    """Finish a signup: the mailed token proves the address, the password proves the person who chose
    it. Without the second, whoever signed up first (or last) with someone else's address would choose
    the password of the account that address's owner creates by opening the link. The token is
    single-use and expires; a wrong password leaves it usable (404 for a link that is not live)."""
    digest = m.token_digest(token)
    key = keys.signup_key(digest)
    found = runtime.store.get(key)
    if found is None:
        raise NotFound("this link is invalid, used or expired")
    pending = m.PendingSignup.model_validate(found.body)
    if pending.expires_at <= clock.now():
        raise NotFound("this link is invalid, used or expired")
    if not runtime.passwords.verify(pending.password_hash, password):
        raise Unauthorized(
            "this is not the password this signup was made with: enter the one you chose when you signed up, "
            "or sign up again to choose another"
        )
    _spend(runtime, key, found.generation)  # the document read above: no second read
    return create_account(
        runtime, pending.email, pending.password_hash, pending.tenant_slug, pending.tenant_name, digest
    )


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
    for invitation in list_invitations(runtime, tenant_id):
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


def list_invitations(runtime: Runtime, tenant_id: int) -> list[m.Invitation]:
    """Pending invitations (expired ones are not listed)."""
    now = clock.now()
    found = runtime.documents.list(keys.invitations_prefix(tenant_id), m.Invitation)
    return sorted((i for i in found if i.expires_at > now), key=lambda i: i.id)


def _drop_invitation(runtime: Runtime, invitation: m.Invitation) -> None:
    runtime.store.delete(keys.invitation_token_key(invitation.token_digest))
    runtime.store.delete(keys.invitation_key(invitation.tenant_id, invitation.id))


def invite(
    runtime: Runtime, tenant_id: int, granter_role: Role, granter_id: int, email: str, role: Role
) -> m.Invitation:
    """Mail a single-use invitation link. Never adds an account directly and answers the same whether
    or not the address is registered; inviting an address again replaces its pending invitation."""
    if not can_grant(granter_role, role):
        raise Forbidden(f"a {granter_role} cannot grant {role}")
    email = email.strip()
    docs = runtime.documents
    for previous in docs.list(keys.invitations_prefix(tenant_id), m.Invitation):
        if keys.email_digest(previous.email) == keys.email_digest(email):
            _drop_invitation(runtime, previous)
    token = secrets.token_urlsafe(32)
    invitation = m.Invitation(
        id=docs.new_id("invitations"),
        tenant_id=tenant_id,
        email=email,
        role=role,
        invited_by=granter_id,
        token_digest=m.token_digest(token),
        expires_at=clock.now() + timedelta(days=runtime.settings.invitation_days),
    )
    docs.save(keys.invitation_key(tenant_id, invitation.id), invitation)
    docs.create(keys.invitation_token_key(invitation.token_digest), m.Pointer(id=invitation.id, tenant_id=tenant_id))
    team = tenant(runtime, tenant_id)
    accept = _link(runtime, "/invitations/accept", token)
    runtime.mailer.send(
        Mail(
            to=email,
            subject=f"You are invited to {team.name} on SegOps",
            text=f"You are invited to join {team.name} ({team.slug}) on SegOps as {role}. Accept here:\n\n"
            f"{accept}\n\nThe link works once, for {runtime.settings.invitation_days} days. "
            "If you do not want to join, ignore this message.",
            links=[accept],
        )
    )
    return invitation


def revoke_invitation(runtime: Runtime, tenant_id: int, invitation_id: int) -> None:
    invitation = runtime.documents.load(keys.invitation_key(tenant_id, invitation_id), m.Invitation)
    if invitation is None:
        raise NotFound("invitation not found")
    _drop_invitation(runtime, invitation)


def invitation_by_token(runtime: Runtime, token: str) -> tuple[m.Invitation, m.Tenant]:
    """The pending invitation a token opens; `NotFound` for unknown, used or expired tokens."""
    gone = NotFound("this invitation is invalid, used or expired")
    digest = m.token_digest(token)
    pointer = runtime.documents.load(keys.invitation_token_key(digest), m.Pointer)
    if pointer is None or pointer.tenant_id is None:
        raise gone
    invitation = runtime.documents.load(keys.invitation_key(pointer.tenant_id, pointer.id), m.Invitation)
    if invitation is None or invitation.expires_at <= clock.now():
        raise gone
    if not hmac.compare_digest(invitation.token_digest, digest):
        raise gone
    return invitation, tenant(runtime, invitation.tenant_id)


def accept_invitation(
    runtime: Runtime, token: str, user_id: int | None, password: str | None
) -> tuple[m.User, m.Tenant, Role]:
    """Join the inviting tenant: as the signed-in account of the invited address, or, without one,
    as a new account for that address (holding the mailed token proves it). Single-use."""
    invitation, team = invitation_by_token(runtime, token)
    user: m.User | None = None
    password_hash = ""
    if user_id is not None:
        user = runtime.documents.load(keys.user_key(user_id), m.User)
        if user is None or keys.email_digest(user.email) != keys.email_digest(invitation.email):
            raise Forbidden("this invitation is for another email address")
        if membership(runtime, team.id, user.id) is not None:
            raise Conflict("you are already a member of this tenant")
    else:
        if runtime.store.get(keys.user_email_key(invitation.email)) is not None:
            raise LoginRequired("this email address already has an account: log in, then accept")
        if password is None:
            raise invalid("/password", "required to create your account", "missing")
        password_hash = runtime.passwords.hash(password)
    _consume(runtime, keys.invitation_token_key(invitation.token_digest))
    runtime.store.delete(keys.invitation_key(team.id, invitation.id))
    if user is None:
        user = _create_user(runtime, invitation.email, password_hash)
    add_member(runtime, team.id, user.id, invitation.role)
    return user, team, invitation.role


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
    runtime: Runtime,
    tenant_id: int,
    name: str,
    role: Role,
    granter_role: Role,
    created_by: int | None,
    kind: api_keys.KeyKind = "secret",
    allowed_origins: Sequence[str] = (),
) -> tuple[m.ApiKey, str]:
    if role == "owner" or (role == "admin" and granter_role != "owner"):
        raise Forbidden(f"a {granter_role} cannot create a key with role {role}")
    secret = api_keys.generate(kind)
    key_id = runtime.documents.new_id("api-keys")
    record = m.ApiKey(
        id=key_id,
        tenant_id=tenant_id,
        name=name,
        prefix=api_keys.display_prefix(secret),
        fingerprint=api_keys.fingerprint(secret),
        role=role,
        kind=kind,
        allowed_origins=list(allowed_origins),
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
    _keys_while_cache_down.delete(API_KEY_CACHE_PREFIX + record.fingerprint)
    # An entry still there (or in another process's stand-in) expires within `api_key_cache_seconds`,
    # the bound revocation promises.
    with contextlib.suppress(CacheUnavailable):
        runtime.cache.delete(API_KEY_CACHE_PREFIX + record.fingerprint)


def resolve_api_key(runtime: Runtime, secret: str) -> m.ApiKey:
    """The active key for a presented secret. Cached briefly; revocation also evicts the entry. With the
    cache down, this process's own cache stands in for it, with the same lifetime (so revocation still
    takes effect within `api_key_cache_seconds`), and the store answers its misses."""
    if not api_keys.looks_like_key(secret):
        raise Unauthorized("invalid API key")
    fingerprint = api_keys.fingerprint(secret)
    cache_key = API_KEY_CACHE_PREFIX + fingerprint
    # Signed: a record written into Valkey by anyone without the signing key is a miss, not a login.
    cache = SignedEntries(runtime.cache, runtime.cache_signing_key)
    try:
        cached = cache.get(cache_key)
    except CacheUnavailable:
        cache = SignedEntries(_keys_while_cache_down, runtime.cache_signing_key)
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
        _remember(cache, cache_key, b"-", ttl)
        raise Unauthorized("invalid API key")
    _remember(cache, cache_key, record.model_dump_json().encode(), ttl)
    _touch(runtime, record)
    return record


def _remember(cache: SignedEntries, key: str, payload: bytes, ttl: float) -> None:
    # The answer stands; the next request reads the store again.
    with contextlib.suppress(CacheUnavailable):
        cache.set(key, payload, ttl)


def _touch(runtime: Runtime, record: m.ApiKey) -> None:
    """Record `last_used_at` at most once a minute per key. Skipped while the cache is down: stamping
    on every request would turn each authenticated call into a store write."""
    try:
        first_this_minute = runtime.cache.add(f"apikey-used:{record.id}", b"1", 60)
    except CacheUnavailable:
        return
    if first_this_minute:

        def stamp(current: m.ApiKey) -> m.ApiKey:
            current.last_used_at = clock.now()
            return current

        runtime.documents.update(keys.api_key_key(record.tenant_id, record.id), m.ApiKey, stamp)
