"""Request rate limits: a token bucket per tenant and one per API key, taken in one atomic cache call.

A bucket holds a minute of the plan's rate (the largest burst) and refills continuously. A request
takes one token from each bucket that applies, or from none: a refused request costs nothing.
Every answer to a limited request carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` for the tightest bucket; a refusal is 429 `rate_limited` with `Retry-After`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from segops import clock
from segops.auth.principal import Principal
from segops.cache.base import CacheUnavailable, TokenBucket
from segops.errors import RateLimited
from segops.limits.plans import plan_of
from segops.runtime import Runtime

log = logging.getLogger("segops.limits")


@dataclass(frozen=True)
class Admission:
    """What the caller may know of its tightest bucket, as response headers."""

    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


def buckets(runtime: Runtime, principal: Principal) -> list[TokenBucket]:
    """The buckets a request of `principal` takes from: its tenant's, and its API key's."""
    assert principal.tenant_id is not None
    plan = plan_of(runtime, principal.tenant_id)
    per_tenant, per_key = plan.api_calls_per_minute, plan.api_calls_per_minute_per_key
    found = [TokenBucket(f"ratelimit:tenant:{principal.tenant_id}", per_tenant, per_tenant / 60)]
    if principal.key_id is not None:
        found.append(TokenBucket(f"ratelimit:key:{principal.key_id}", per_key, per_key / 60))
    return found


def take(runtime: Runtime, limited: list[TokenBucket]) -> Admission:
    """One token from every bucket, or `RateLimited` (with the headers to send) and none taken."""
    now_ms = int(clock.now().timestamp() * 1000)
    taken, levels = runtime.cache.take_tokens(limited, 1, now_ms)
    if taken:
        # The tightest bucket is the one closest to refusing.
        level, bucket = min(zip(levels, limited, strict=True), key=lambda pair: pair[0])
        return Admission(bucket.capacity, math.floor(level), math.ceil(bucket.seconds_to_full(level)))
    # The bucket that keeps the caller waiting longest decides when to come back.
    level, bucket = max(
        ((level, b) for level, b in zip(levels, limited, strict=True) if level < 1),
        key=lambda pair: (1 - pair[0]) / pair[1].per_second,
    )
    wait = (1 - level) / bucket.per_second
    admission = Admission(bucket.capacity, 0, math.ceil(bucket.seconds_to_full(level)))
    raise RateLimited(
        "too many requests; slow down and retry after the delay",
        retry_after=max(1, math.ceil(wait)),
        details={"limit": bucket.capacity, "window_seconds": 60},
        headers=admission.headers(),
    )


def admit(runtime: Runtime, principal: Principal) -> Admission | None:
    """Admit one request of `principal`, or `RateLimited`. None: nothing to limit (no tenant), or the
    cache is unreachable, where limits fail open: serving unlimited beats refusing everyone."""
    if principal.tenant_id is None:
        return None
    try:
        return take(runtime, buckets(runtime, principal))
    except CacheUnavailable:
        log.warning("rate limits not applied: the cache is unavailable", extra={"tenant_id": principal.tenant_id})
        return None
