from __future__ import annotations

from typing import Literal, get_args

Role = Literal["viewer", "member", "admin", "owner"]
ROLES: tuple[Role, ...] = get_args(Role)
_RANK: dict[str, int] = {role: i for i, role in enumerate(ROLES)}


def at_least(role: str, required: str) -> bool:
    return _RANK[role] >= _RANK[required]


def can_grant(granter: str, role: str) -> bool:
    """Admins manage members and viewers; only owners grant or change owner/admin."""
    if granter == "owner":
        return True
    return granter == "admin" and role in ("member", "viewer")
