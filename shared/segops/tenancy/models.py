from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from segops import clock
from segops.auth.api_keys import KeyKind
from segops.auth.roles import Role
from segops.http.cors import canonical_origin


def token_digest(token: str) -> str:
    """Mailed tokens carry 256 random bits: a fast hash is safe, and only the hash is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


class Tenant(BaseModel):
    id: int
    slug: str
    name: str
    created_at: datetime = Field(default_factory=clock.now)


class User(BaseModel):
    id: int
    email: str
    password_hash: str
    created_at: datetime = Field(default_factory=clock.now)
    tenant_ids: list[int] = Field(default_factory=list)


class Membership(BaseModel):
    tenant_id: int
    user_id: int
    role: Role
    created_at: datetime = Field(default_factory=clock.now)


class Invitation(BaseModel):
    id: int
    tenant_id: int
    email: str
    role: Role
    invited_by: int
    token_digest: str
    expires_at: datetime
    created_at: datetime = Field(default_factory=clock.now)


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
    kind: KeyKind = "secret"
    # Publishable keys: the page origins (`scheme://host[:port]`) allowed to send with it, as a browser
    # sends them (keys stored before origins were normalised may hold a default port: read without it).
    allowed_origins: Annotated[list[str], AfterValidator(lambda origins: [canonical_origin(o) for o in origins])] = (
        Field(default_factory=list)
    )
    created_at: datetime = Field(default_factory=clock.now)
    created_by: int | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class Pointer(BaseModel):
    """An index document that points at another document (unique claims, lookups)."""

    id: int
    tenant_id: int | None = None
