"""Segment documents written straight to the control plane (what the segments API stores, its
active-segment index entry included)."""

from __future__ import annotations

from typing import Any

from segops.runtime import Runtime
from segops.segments import active as active_index
from segops.segments.models import Segment
from segops.store import keys


def put_segment(
    runtime: Runtime,
    tenant_id: int,
    segment_id: int,
    definition: dict[str, Any] | None,
    *,
    version: int = 1,
    active: bool = True,
) -> Segment:
    segment = Segment(
        id=segment_id,
        tenant=tenant_id,
        name=f"segment {segment_id}",
        definition=definition,
        version=version,
        active=active,
    )
    runtime.documents.save(keys.segment_key(tenant_id, segment_id), segment)
    active_index.refresh(runtime, tenant_id, segment_id)
    return segment
