"""Who is calling, for which tenant, with which role (`segops.http.authentication` resolves it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from segops.auth.roles import Role


@dataclass(frozen=True)
class Principal:
    kind: Literal["user", "api_key"]
    user_id: int | None
    key_id: int | None
    tenant_id: int | None
    role: Role | None
    # A publishable key's allowed page origins; None for every other principal.
    allowed_origins: tuple[str, ...] | None = None
