"""Where connectors read membership from: one compute's diff, and the current members for full syncs.

The membership tables belong to segment_compute (`segops.membership`); this seam keeps connectors to
the two reads they need. A runtime may carry its own feed in `runtime.extras["membership_feed"]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from segops.errors import DependencyDown
from segops.runtime import Runtime
from segops.segments.models import ComputeState, compute_state_key


@dataclass(frozen=True)
class MembershipDiff:
    entered: Iterable[str]
    exited: Iterable[str]


class MembershipFeed(Protocol):
    def changes(self, tenant_id: int, segment_id: int, compute_id: str) -> MembershipDiff: ...

    def members(self, tenant_id: int, segment_id: int) -> Iterable[str]: ...


def membership_feed(runtime: Runtime) -> MembershipFeed:
    feed = runtime.extras.get("membership_feed")
    if feed is None:
        raise DependencyDown("membership tables are not available yet (segment_compute)")
    return feed  # type: ignore[no-any-return]


def last_computed_at(runtime: Runtime, tenant_id: int, segment_id: int) -> datetime | None:
    """computed_at of the segment's newest successful compute (what a full sync reflects at least)."""
    state = runtime.documents.load(compute_state_key(tenant_id, segment_id), ComputeState)
    if state is None:
        return None
    return state.last_computed_at or (state.computed_at if state.status == "succeeded" else None)
