from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from segops import clock
from segops.auth.roles import Role


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
    tenant_id: int
    email: str
    role: Role
    invited_by: int
    created_at: datetime = Field(default_factory=clock.now)


class ApiKey(BaseModel):
    id: int
    tenant_id: int
    name: str
    prefix: str
    fingerprint: str
    role: Role
    created_at: datetime = Field(default_factory=clock.now)
    created_by: int | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class Pointer(BaseModel):
    """An index document that points at another document (unique claims, lookups)."""

    id: int
    tenant_id: int | None = None
