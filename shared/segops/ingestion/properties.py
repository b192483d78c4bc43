"""`GET /api/ingestion/properties/`: the property paths a tenant's events carry, for the rule builder.

Paths are read from a bounded sample of the most recent payloads of each event type (and of the
`context_identified` traits that become user properties), flattened to the DSL's dotted form.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel

from segops.runtime import Runtime
from segops.warehouse.base import TenantWarehouse

SAMPLE_PER_TYPE = 200
MAX_PATHS = 200
# Nested objects deeper than this are not offered: such paths are rare and make long lists.
MAX_DEPTH = 4


class EventProperties(BaseModel):
    event_type: str
    properties: list[str]


class PropertyKeys(BaseModel):
    results: list[EventProperties]


def property_paths(payload: Any, prefix: str = "", depth: int = 1) -> set[str]:
    """Dotted paths to every scalar or list in a JSON object (`address.city`); keys with dots are skipped
    because the DSL's paths cannot name them."""
    found: set[str] = set()
    if not isinstance(payload, dict):
        return found
    for key, value in payload.items():
        if not isinstance(key, str) or not key or "." in key:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth < MAX_DEPTH:
            found |= property_paths(value, f"{path}.", depth + 1)
        else:
            found.add(path)
    return found


def property_keys(runtime: Runtime, tenant_id: int, event_type: str | None) -> PropertyKeys:
    """Per event type, newest events first, at most `SAMPLE_PER_TYPE` payloads each."""
    scoped = TenantWarehouse(runtime.warehouse, tenant_id)
    rows = scoped.query(
        "SELECT event_type, payload FROM events WHERE tenant_id = {tenant_id:UInt64} "
        "AND ({event_type:Nullable(String)} IS NULL OR event_type = {event_type:Nullable(String)}) "
        "ORDER BY received_at DESC LIMIT {sample:UInt32} BY event_type",
        {"event_type": event_type, "sample": SAMPLE_PER_TYPE},
    ).rows
    paths: dict[str, set[str]] = {}
    for kind, payload in rows:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        paths.setdefault(str(kind), set()).update(property_paths(document))
    return PropertyKeys(
        results=[
            EventProperties(event_type=kind, properties=sorted(found)[:MAX_PATHS])
            for kind, found in sorted(paths.items())
        ]
    )
