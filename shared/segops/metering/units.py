"""The billable units of the domains that have an idempotency key, and what each unit measures."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from typing import Protocol

from segops.metering.meter import Meter, meter_for
from segops.runtime import Runtime
from segops.warehouse.statistics import QueryStatistics


def compute_pass(
    runtime: Runtime, tenant_id: int, compute_ids: Sequence[str], mode: str, statistics: QueryStatistics
) -> None:
    """One evaluation pass of a tenant's segments, keyed by its computes' ids (a redelivered or
    retried compute keeps its id): the segments it computed and the warehouse work it cost."""
    digest = hashlib.blake2b("\n".join(sorted(compute_ids)).encode(), digest_size=16).hexdigest()
    meter_for(runtime).unit(
        tenant_id,
        f"compute:{digest}",
        {
            "computes": len(compute_ids),
            "compute_rows_read": statistics.rows_read,
            "compute_bytes_read": statistics.bytes_read,
            "compute_cpu_us": statistics.cpu_us,
            "compute_elapsed_us": statistics.elapsed_us,
        },
        mode,
    )


def export_file(runtime: Runtime, tenant_id: int, export_id: int, fmt: str, rows: int, size_bytes: int) -> None:
    """A finished export (a redelivered export message finds it finished and writes nothing)."""
    meter_for(runtime).unit(
        tenant_id, f"export:{export_id}", {"exports": 1, "export_rows": rows, "export_bytes": size_bytes}, fmt
    )


def connector_sync(
    runtime: Runtime, tenant_id: int, connector_id: int, connector_type: str, change: str, users_pushed: int
) -> None:
    """A connector sync that pushed: `change` is the compute id it applied (a redelivered change runs a
    new sync of the same change) or `full-<sync id>` for a full resync."""
    meter_for(runtime).unit(
        tenant_id,
        f"sync:{connector_id}:{change}",
        {"connector_syncs": 1, "connector_users_pushed": users_pushed},
        connector_type,
    )


_TENANT_AND_SOURCE = attrgetter("tenant_id", "source")  # read in C: this runs on every event stored


class AcceptedEvent(Protocol):
    """What counting a stored event reads (the event writer's rows, or `TrackedEvent`s)."""

    @property
    def tenant_id(self) -> int: ...

    @property
    def source(self) -> str: ...


def events_accepted(meter: Meter, events: Sequence[AcceptedEvent]) -> None:
    """Events the event writer has just stored for the first time, by tenant and source: the writer's
    claims and stored-id lookup make that once per event id, so a client retry with the same
    `message_id` or a redelivery is not accepted again."""
    for (tenant_id, source), count in Counter(map(_TENANT_AND_SOURCE, events)).items():
        meter.count(tenant_id, "events_accepted", count, source)
