"""Where connectors read membership from: one compute's diff, and a pinned snapshot for full syncs.

The membership tables belong to segment_compute (`segops.membership`); this seam keeps connectors to
the reads they need. `runtime.membership_feed` is the one in use: `warehouse_feed` over the
membership tables, or whatever a test puts there to drive connectors without computes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


class MembershipDiff(Protocol):
    @property
    def entered(self) -> Sequence[str]: ...

    @property
    def exited(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class MembershipSnapshot:
    """Every member as of one published compute (`version`/`computed_at` are None before the first)."""

    version: int | None
    computed_at: datetime | None
    members: Iterable[str]


class MembershipFeed(Protocol):
    def changes(self, tenant_id: int, segment_id: int, compute_id: str) -> MembershipDiff: ...

    def version(self, tenant_id: int, segment_id: int, compute_id: str) -> int | None:
        """Where the compute stands in the segment's publication order (None if it published nothing)."""
        ...

    def snapshot(self, tenant_id: int, segment_id: int) -> MembershipSnapshot: ...
