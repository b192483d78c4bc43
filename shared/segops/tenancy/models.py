from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from segops.auth.roles import Role


def utcnow() -> datetime:
    return datetime.now(UTC)


def email_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def token_digest(token: str) -> str:
    """Mailed tokens carry 256 random bits: a fast hash is safe, and only the hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class Tenant(BaseModel):
    id: int
    slug: str
    name: str
    created_at: datetime = Field(default_factory=utcnow)


class User(BaseModel):
    id: int
    email: str
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    tenant_ids: list[int] = Field(default_factory=list)


class Membership(BaseModel):
    tenant_id: int
    user_id: int
    role: Role
    created_at: datetime = Field(default_factory=utcnow)


class Invitation(BaseModel):
    id: int
    tenant_id: int
    email: str
    role: Role
    invited_by: int
    token_digest: str
    expires_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class PendingSignup(BaseModel):
    """A signup waiting for its email to be verified; nothing else exists until then."""

    email: str
    password_hash: str
    tenant_slug: str
    tenant_name: str | None
    expires_at: datetime


class SlugReservation(BaseModel):
    """Holds a slug for a pending signup, so the verified signup cannot lose it."""

    signup: str
    email_key: str
    expires_at: datetime


class ApiKey(BaseModel):
    id: int
    tenant_id: int
    name: str
    prefix: str
    fingerprint: str
    role: Role
    created_at: datetime = Field(default_factory=utcnow)
    created_by: int | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class Pointer(BaseModel):
    """An index document that points at another document (unique claims, lookups)."""

    id: int
    tenant_id: int | None = None


def tenant_key(tenant_id: int) -> str:
    return f"tenants/{tenant_id}/tenant"


def slug_key(slug: str) -> str:
    return f"tenant-slugs/{slug}"


def user_key(user_id: int) -> str:
    return f"users/{user_id}"


def user_email_key(email: str) -> str:
    return f"user-emails/{email_key(email)}"


def membership_key(tenant_id: int, user_id: int) -> str:
    return f"tenants/{tenant_id}/members/{user_id}"


def invitation_key(tenant_id: int, invitation_id: int) -> str:
    return f"tenants/{tenant_id}/invitations/{invitation_id}"


def invitation_token_key(digest: str) -> str:
    return f"invitation-tokens/{digest}"


def signup_key(digest: str) -> str:
    return f"signups/{digest}"


def slug_reservation_key(slug: str) -> str:
    return f"tenant-slug-reservations/{slug}"


def api_key_key(tenant_id: int, key_id: int) -> str:
    return f"tenants/{tenant_id}/api-keys/{key_id}"


def api_key_index_key(fingerprint: str) -> str:
    return f"api-keys/{fingerprint}"
