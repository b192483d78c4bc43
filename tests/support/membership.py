"""Membership as segment_compute records it, for driving connectors from tests: each `compute()` stores
the diff against the previous members and returns the `MembershipChanged` message segment_compute
publishes. Plugged in as `runtime.membership_feed`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from segops.bus.base import Topic
from segops.connectors.feed import MembershipSnapshot
from segops.messages import MembershipChanged
from segops.runtime import Runtime
from segops.segments import active
from segops.segments.models import Segment
from segops.store import keys


@dataclass(frozen=True)
class Diff:
    entered: list[str]
    exited: list[str]


class RecordedMembership:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.current: dict[tuple[int, int], set[str]] = {}
        self.diffs: dict[str, tuple[list[str], list[str]]] = {}
        self.computed_at: dict[tuple[int, int], datetime] = {}
        self.latest: dict[tuple[int, int], int] = {}
        self.versions: dict[str, int] = {}
        self.clock = datetime(2026, 1, 1, tzinfo=UTC)
        runtime.membership_feed = self

    def changes(self, tenant_id: int, segment_id: int, compute_id: str) -> Diff:
        entered, exited = self.diffs[compute_id]
        return Diff(entered, exited)

    def version(self, tenant_id: int, segment_id: int, compute_id: str) -> int | None:
        return self.versions.get(compute_id)

    def snapshot(self, tenant_id: int, segment_id: int) -> MembershipSnapshot:
        key = (tenant_id, segment_id)
        members = sorted(self.current.get(key, set()))
        return MembershipSnapshot(self.latest.get(key), self.computed_at.get(key), iter(members))

    def segment(self, tenant_id: int, segment_id: int = 1) -> int:
        self.runtime.documents.save(
            keys.segment_key(tenant_id, segment_id), Segment(id=segment_id, tenant=tenant_id, name=f"s{segment_id}")
        )
        active.refresh(self.runtime, tenant_id, segment_id)
        return segment_id

    def compute(self, tenant_id: int, segment_id: int, members: Iterable[str]) -> MembershipChanged:
        new = set(members)
        old = self.current.get((tenant_id, segment_id), set())
        self.clock += timedelta(minutes=5)
        compute_id = uuid.uuid4().hex
        self.diffs[compute_id] = (sorted(new - old), sorted(old - new))
        self.current[(tenant_id, segment_id)] = new
        self.computed_at[(tenant_id, segment_id)] = self.clock
        self.versions[compute_id] = len(self.versions) + 1
        self.latest[(tenant_id, segment_id)] = self.versions[compute_id]
        return MembershipChanged(
            tenant_id=tenant_id,
            segment_id=segment_id,
            compute_id=compute_id,
            computed_at=self.clock,
            entered_count=len(new - old),
            exited_count=len(old - new),
        )

    def publish(self, message: MembershipChanged) -> None:
        self.runtime.bus.publish(Topic.MEMBERSHIP_CHANGES, message.model_dump_json().encode())


def identify(runtime: Runtime, tenant_id: int, properties: dict[str, dict[str, object]]) -> None:
    """Store user properties the way ingestion does: `context_identified` events (→ user_properties MV)."""
    import orjson

    now = datetime.now(UTC)
    rows = [
        (tenant_id, str(uuid.uuid4()), "", user_id, "context_identified", now, now, orjson.dumps(props).decode())
        for user_id, props in properties.items()
    ]
    columns = ["tenant_id", "event_id", "message_id", "user_id", "event_type", "occurred_at", "received_at", "payload"]
    runtime.warehouse.insert("events", columns, rows)
