"""Attempt limits for unauthenticated endpoints (login, signup): fixed windows counted in the cache.

A window's counter is keyed by a hash of its subject (an email address or a client address), so the
cache never holds either in clear. Going over a limit is a 429 whose `Retry-After` is the time left in
the window.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass

from flask import Request

from segops import clock
from segops.cache.base import CacheUnavailable
from segops.config import Settings
from segops.errors import RateLimited
from segops.runtime import Runtime

log = logging.getLogger("segops.auth.throttle")


@dataclass(frozen=True)
class Limit:
    scope: str
    attempts: int
    window_seconds: int


@dataclass(frozen=True)
class Limits:
    login_account: Limit
    login_address: Limit
    signup_email: Limit
    signup_address: Limit

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        login, signup = settings.login_window_seconds, settings.signup_window_seconds
        return cls(
            login_account=Limit("login-account", settings.login_failures_per_account, login),
            login_address=Limit("login-address", settings.logins_per_address, login),
            signup_email=Limit("signup-email", settings.signups_per_email, signup),
            signup_address=Limit("signup-address", settings.signups_per_address, signup),
        )


def client_address(request: Request, trusted_proxy_hops: int) -> str:
    """The caller's address: the socket peer, or, behind `trusted_proxy_hops` proxies that each append
    to X-Forwarded-For, the entry they appended for the client (entries further left are client-supplied)."""
    if trusted_proxy_hops > 0:
        hops = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",") if part.strip()]
        if len(hops) >= trusted_proxy_hops:
            return hops[-trusted_proxy_hops]
    return request.remote_addr or "unknown"


def _key(limit: Limit, subject: str, now: float) -> tuple[str, float]:
    window = int(now // limit.window_seconds)
    digest = hashlib.sha256(subject.strip().lower().encode()).hexdigest()[:32]
    return f"throttle:{limit.scope}:{digest}:{window}", (window + 1) * limit.window_seconds - now


def _refuse(limit: Limit, left: float) -> RateLimited:
    return RateLimited("too many attempts; try again later", retry_after=max(1, math.ceil(left)))


def _unthrottled(limit: Limit) -> None:
    """Fail open while the cache is down: refusing every login and signup would be an outage of its own;
    argon2's bounded hashing slots (`segops.auth.passwords`) still cap the guessing rate."""
    log.warning("cache unavailable: attempts are not counted", extra={"scope": limit.scope})


def hit(runtime: Runtime, limit: Limit, subject: str) -> None:
    """Count one attempt; `RateLimited` once the window holds more than `limit.attempts`."""
    key, left = _key(limit, subject, clock.now().timestamp())
    try:
        attempts = runtime.cache.incr(key, left + 1)
    except CacheUnavailable:
        _unthrottled(limit)
        return
    if attempts > limit.attempts:
        raise _refuse(limit, left)


def check(runtime: Runtime, limit: Limit, subject: str) -> None:
    """`RateLimited` if the window is already full (for limits counted only on failure, by `hit`)."""
    key, left = _key(limit, subject, clock.now().timestamp())
    try:
        current = runtime.cache.get(key)
    except CacheUnavailable:
        _unthrottled(limit)
        return
    if current is not None and int(current) >= limit.attempts:
        raise _refuse(limit, left)
