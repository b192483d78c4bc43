"""Sign-in sessions: a family of refresh tokens that rotate on every use.

Each refresh hands out a new refresh token and retires the presented one. Presenting a retired one
means two parties hold the family (a stolen token), so the whole family is revoked: the thief and
the owner both sign in again. Logout revokes the family too. Access tokens carry their family; a
revoked family is also flagged in the cache for one access-token lifetime so they stop at once; with
the cache down, access tokens are checked against the family document instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from segops import clock
from segops.auth import tokens
from segops.cache.base import CacheUnavailable
from segops.errors import Unauthorized
from segops.runtime import Runtime
from segops.store import keys

REVOKED_PREFIX = "revoked-family:"


class RefreshFamily(BaseModel):
    user_id: int
    current_jti: str
    expires_at: datetime
    revoked_at: datetime | None = None


def _pair(runtime: Runtime, user_id: int, family: str, jti: str) -> dict[str, object]:
    settings = runtime.settings
    secret = runtime.jwt_secret
    return {
        "access": tokens.issue(secret, user_id, "access", timedelta(minutes=settings.access_token_minutes), family),
        "refresh": tokens.issue(secret, user_id, "refresh", timedelta(days=settings.refresh_token_days), family, jti),
        "expires_in": settings.access_token_minutes * 60,
    }


def start(runtime: Runtime, user_id: int) -> dict[str, object]:
    """A new family (one sign-in) and its first token pair."""
    family, jti = tokens.new_id(), tokens.new_id()
    expires_at = clock.now() + timedelta(days=runtime.settings.refresh_token_days)
    runtime.documents.create(
        keys.refresh_family_key(family), RefreshFamily(user_id=user_id, current_jti=jti, expires_at=expires_at)
    )
    return _pair(runtime, user_id, family, jti)


def rotate(runtime: Runtime, refresh_token: str) -> dict[str, object]:
    """A new pair for the current refresh token of a live family; a retired one revokes the family."""
    claims = tokens.verify(runtime.jwt_secret, refresh_token, "refresh")
    next_jti = tokens.new_id()

    now = clock.now()
    lifetime = timedelta(days=runtime.settings.refresh_token_days)

    def advance(family: RefreshFamily) -> RefreshFamily:
        if family.revoked_at is not None or family.user_id != claims.user_id or family.expires_at <= now:
            return family
        if family.current_jti != claims.jti:
            family.revoked_at = now
        else:
            # Sliding: a session in use lives on, one left alone ends `refresh_token_days` after its last use.
            family.current_jti, family.expires_at = next_jti, now + lifetime
        return family

    family = runtime.documents.update(keys.refresh_family_key(claims.family), RefreshFamily, advance)
    if family is None or family.revoked_at is not None or family.current_jti != next_jti:
        if family is not None and family.revoked_at is not None:
            _flag_revoked(runtime, claims.family)
        raise Unauthorized("invalid token")
    return _pair(runtime, claims.user_id, claims.family, next_jti)


def revoke(runtime: Runtime, refresh_token: str) -> None:
    """Logout: the family of a valid refresh token (current or retired) is revoked."""
    claims = tokens.verify(runtime.jwt_secret, refresh_token, "refresh")

    def end(family: RefreshFamily) -> RefreshFamily:
        if family.user_id == claims.user_id and family.revoked_at is None:
            family.revoked_at = clock.now()
        return family

    family = runtime.documents.update(keys.refresh_family_key(claims.family), RefreshFamily, end)
    if family is None or family.user_id != claims.user_id:
        raise Unauthorized("invalid token")
    _flag_revoked(runtime, claims.family)


def _flag_revoked(runtime: Runtime, family: str) -> None:
    # Only as long as an access token of the family can live; the document stays authoritative.
    runtime.cache.set(REVOKED_PREFIX + family, b"1", runtime.settings.access_token_minutes * 60)


def verify_access(runtime: Runtime, token: str) -> tokens.Claims:
    """The claims of a valid access token whose family has not been revoked."""
    claims = tokens.verify(runtime.jwt_secret, token, "access")
    try:
        revoked = runtime.cache.get(REVOKED_PREFIX + claims.family) is not None
    except CacheUnavailable:
        # The family document is authoritative (the flag only saves this read); a flag that could not
        # be written fails its logout with a 503, so the client retries it (docs/operations.md § Outages).
        family = runtime.documents.load(keys.refresh_family_key(claims.family), RefreshFamily)
        revoked = family is None or family.revoked_at is not None
    if revoked:
        raise Unauthorized("session ended")
    return claims
