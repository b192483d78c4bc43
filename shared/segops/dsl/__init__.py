"""The segment DSL: models, validation and the compiler (docs/design.md §5).

- `parse_definition(obj, prefix=()) -> SegmentDefinition`: validate once; raises
  `segops.errors.ValidationFailed` whose `details["errors"]` are `{pointer, message}` with JSON
  pointers to the offending fields (`/conditions/0/value`), prefixed by `prefix`.
- `compile_segment(definition, source=None) -> CompiledQuery(sql, params)`: one segment, rows = members.
- `compile_segments([(segment_id, definition), ...], source=None) -> CompiledQuery`: one pass, one
  boolean column per segment (`CompiledQuery.columns`).
- Event sources (`segops.dsl.sources`): `tenant_events(user_ids=None)` (default: `StoredEvents`,
  read through the per-user day states) and `EventSource` (any relation of raw event rows,
  aggregated raw).
- `segops.dsl.evaluator.UserHistory(events, now)`: ONE user's history evaluated in memory with the
  compiler's semantics (the sandbox); `.members([(segment_id, definition), ...])`, `.with_event(...)`.

Run a compiled query with `TenantWarehouse(runtime.warehouse, tenant_id).query(q.sql, q.bind(now))`.
"""

from segops.dsl.compiler import (
    HOT_PATH,
    NOW,
    PROPERTIES_EVENT_TYPE,
    CompiledQuery,
    compile_segment,
    compile_segments,
    window_milliseconds,
)
from segops.dsl.models import (
    MAX_CONDITIONS,
    MAX_DEPTH,
    Condition,
    EventCount,
    Group,
    Monetary,
    PropertyFilter,
    Recency,
    SegmentDefinition,
    UserProperty,
    conditions,
    is_time_dependent,
    parse_definition,
)
from segops.dsl.sources import EventSource, StoredEvents, tenant_events

__all__ = [
    "HOT_PATH",
    "MAX_CONDITIONS",
    "MAX_DEPTH",
    "NOW",
    "PROPERTIES_EVENT_TYPE",
    "CompiledQuery",
    "Condition",
    "EventCount",
    "EventSource",
    "Group",
    "Monetary",
    "PropertyFilter",
    "Recency",
    "SegmentDefinition",
    "StoredEvents",
    "UserProperty",
    "compile_segment",
    "compile_segments",
    "conditions",
    "is_time_dependent",
    "parse_definition",
    "tenant_events",
    "window_milliseconds",
]
