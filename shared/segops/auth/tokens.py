from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import jwt

from segops import clock
from segops.errors import Unauthorized

TokenType = Literal["access", "refresh"]
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Claims:
    user_id: int
    jti: str
    # The refresh-token family (one sign-in); its access tokens die with it (`segops.auth.sessions`).
    family: str


def _require_key(secret: str) -> None:
    if not secret:
        raise RuntimeError("no JWT signing key configured (SEGOPS_JWT_SECRET)")


def new_id() -> str:
    return uuid.uuid4().hex


def issue(secret: str, user_id: int, token_type: TokenType, lifetime: timedelta, family: str, jti: str = "") -> str:
    _require_key(secret)
    now = clock.now()
    claims = {
        "sub": str(user_id),
        "typ": token_type,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or new_id(),
        "fam": family,
        "iss": "segops",
    }
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


_SUBJECT = re.compile(r"[1-9][0-9]{0,18}")


def verify(secret: str, token: str, token_type: TokenType) -> Claims:
    """The claims of a valid token of that type; `Unauthorized` for anything else (alg=none included)."""
    _require_key(secret)
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[_ALGORITHM],
            issuer="segops",
            # Times are checked below against `clock.now()`, the instant every other check uses.
            options={
                "require": ["exp", "iat", "sub", "typ", "jti", "fam"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid token") from None
    jti, family = claims.get("jti"), claims.get("fam")
    if claims.get("typ") != token_type or not isinstance(jti, str) or not isinstance(family, str):
        raise Unauthorized("invalid token")
    if not jti or not family:
        raise Unauthorized("invalid token")
    try:
        issued_at, expires_at = int(claims["iat"]), int(claims["exp"])
    except (TypeError, ValueError, OverflowError):
        raise Unauthorized("invalid token") from None
    now = clock.now().timestamp()
    if issued_at > now:
        raise Unauthorized("invalid token")
    if expires_at <= now:
        raise Unauthorized("token expired")
    subject = claims["sub"]
    # The user's id as this server writes it (`int` would also take " 3", "-3", "03" and "3_0", which
    # name no user, or spell one another way).
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise Unauthorized("invalid token")
    return Claims(int(subject), jti, family)
