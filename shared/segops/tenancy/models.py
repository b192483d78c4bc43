from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from segops.auth.api_keys import KeyKind
from segops.auth.roles import Role


def utcnow() -> datetime:
    return datetime.now(UTC)


def email_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


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
    tenant_id: int
    email: str
    role: Role
    invited_by: int
    created_at: datetime = Field(default_factory=utcnow)


class ApiKey(BaseModel):
    id: int
    tenant_id: int
    name: str
    prefix: str
    fingerprint: str
    role: Role
    kind: KeyKind = "secret"
    # Publishable keys: the page origins (`scheme://host[:port]`) allowed to send with it.
    allowed_origins: list[str] = Field(default_factory=list)
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


def invitation_key(tenant_id: int, email: str) -> str:
    return f"tenants/{tenant_id}/invitations/{email_key(email)}"


def invitation_index_key(email: str, tenant_id: int) -> str:
    return f"invitations-by-email/{email_key(email)}/{tenant_id}"


def api_key_key(tenant_id: int, key_id: int) -> str:
    return f"tenants/{tenant_id}/api-keys/{key_id}"


def api_key_index_key(fingerprint: str) -> str:
    return f"api-keys/{fingerprint}"
