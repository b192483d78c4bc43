"""Segment definitions → ONE ClickHouse aggregate pass over a tenant's events (docs/design.md §5).

Public API:

- `compile_segment(definition, source=tenant_events()) -> CompiledQuery`: `SELECT user_id ... GROUP BY
  user_id HAVING <definition>`; the rows are the members.
- `compile_segments([(segment_id, definition), ...], source=...) -> CompiledQuery`: one pass for many
  segments; columns `user_id` and one `UInt8` column per segment (`CompiledQuery.columns` maps
  segment id → column name); only users in at least one segment are returned.

Contract of the SQL: it references `{tenant_id:UInt64}` (bind it with `TenantWarehouse`) and
`{now:DateTime64(3, 'UTC')}` (bind it with `CompiledQuery.bind(now)`); every other value, including
event types and payload keys, is in `CompiledQuery.params`. Nothing from a definition is ever
formatted into the SQL text; identifiers come from `segops.warehouse.identifiers` only.

Semantics, exactly docs/design.md §5: the universe is every user with an event at or before `now`; events
after `now` are ignored; `window_days` keeps events with `occurred_at > now - window` where the window
is `round(window_days * 86_400_000)` milliseconds (the timestamp resolution), and recency compares
the milliseconds since the last matching event with the same window. User properties are the payload
of the user's latest `context_identified` event at `now` (by `occurred_at`, then `received_at`),
derived in the same pass, so a hypothetical `context_identified` in the source overrides them.
JSON `null` is treated as a missing property. Numbers compare as IEEE doubles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segops.dsl.models import (
    Condition,
    EventCount,
    Group,
    Monetary,
    PropertyFilter,
    Recency,
    SegmentDefinition,
    UserProperty,
)
from segops.dsl.sources import EventSource, tenant_events
from segops.warehouse.identifiers import quote_identifier, segment_column

NOW = "{now:DateTime64(3, 'UTC')}"
PROPERTIES_EVENT_TYPE = "context_identified"
MS_PER_DAY = 86_400_000
_NUMERIC_TYPES = "('Int64', 'UInt64', 'Double')"
_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def window_milliseconds(window_days: float) -> int:
    """The resolution every window and recency threshold is evaluated at."""
    return round(window_days * MS_PER_DAY)


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: dict[str, Any]
    columns: dict[int, str] = field(default_factory=dict)

    def bind(self, now: datetime) -> dict[str, Any]:
        """Parameters for one evaluation at `now` (the tenant id is bound by `TenantWarehouse`)."""
        return {**self.params, "now": now}


class _Context:
    """Collects bound parameters; equal values share one placeholder so equal SQL dedups."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self._names: dict[tuple[str, str, Any], str] = {}

    def bind(self, value: Any, ch_type: str) -> str:
        key = (ch_type, type(value).__name__, tuple(value) if isinstance(value, list) else value)
        name = self._names.get(key)
        if name is None:
            name = f"p{len(self._names)}"
            self._names[key] = name
            self.params[name] = value
        return f"{{{name}:{ch_type}}}"


class _Compiler:
    """Conditions become boolean expressions over named per-user aggregates (`a0`, `a1`, ...)."""

    def __init__(self, context: _Context) -> None:
        self.ctx = context
        self.aggregates: dict[str, str] = {}
        self._conditions: dict[type, Callable[[Any], str]] = {
            EventCount: self._event_count,
            Monetary: self._monetary,
            Recency: self._recency,
            UserProperty: self._user_property,
        }

    def node(self, node: Group | Condition) -> str:
        if isinstance(node, Group):
            joiner = f" {node.logic} "
            return "(" + joiner.join(self.node(child) for child in node.conditions) + ")"
        compile_condition = self._conditions.get(type(node))
        if compile_condition is None:
            raise TypeError(f"no compiler for {type(node).__name__}")
        return compile_condition(node)

    def aggregate(self, sql: str) -> str:
        """Name an aggregate of the one pass; the same aggregate is computed once for every condition."""
        alias = self.aggregates.get(sql)
        if alias is None:
            alias = quote_identifier(f"a{len(self.aggregates)}")
            self.aggregates[sql] = alias
        return alias

    # -- conditions -------------------------------------------------------------------------

    def _event_count(self, c: EventCount) -> str:
        match = self._match(c.event_type, c.window_days, c.where)
        return f"{self.aggregate(f'countIf({match})')} {_COMPARE[c.operator]} {self.ctx.bind(c.value, 'Int64')}"

    def _monetary(self, c: Monetary) -> str:
        doc = "payload"
        keys = self._keys(c.property)
        match = f"{self._match(c.event_type, c.window_days, c.where)} AND JSONType({doc}, {keys}) IN {_NUMERIC_TYPES}"
        # `if` is evaluated lazily: only matching rows pay for the JSON parse (an -If aggregate's
        # argument alone would be computed for every row of the tenant).
        amount = f"if({match}, JSONExtractFloat({doc}, {keys}), 0)"
        value = self.ctx.bind(c.value, "Float64")
        op = _COMPARE[c.operator]
        seen = self.aggregate(f"countIf({match})")
        if c.metric == "count":
            return f"{seen} {op} {value}"
        total = self.aggregate(f"sumIf({amount}, {match})")
        if c.metric == "sum":
            return f"{total} {op} {value}"
        # avg/min/max of no values make the condition false (docs/design.md §5).
        if c.metric == "avg":
            return f"({seen} > 0 AND {total} / {seen} {op} {value})"
        return f"({seen} > 0 AND {self.aggregate(f'{c.metric}If({amount}, {match})')} {op} {value})"

    def _recency(self, c: Recency) -> str:
        match = self._match(c.event_type, None, [])
        since = f"dateDiff('millisecond', {self.aggregate(f'maxIf(occurred_at, {match})')}, {NOW})"
        window = self.ctx.bind(window_milliseconds(c.window_days), "Int64")
        seen = self.aggregate(f"countIf({match})")
        # Never did it = infinitely long ago: greater-than holds, less-than does not.
        if c.operator in ("gt", "gte"):
            return f"({seen} = 0 OR {since} {_COMPARE[c.operator]} {window})"
        return f"({seen} > 0 AND {since} {_COMPARE[c.operator]} {window})"

    def _user_property(self, c: UserProperty) -> str:
        properties = self.aggregate(
            f"argMaxIf(payload, (occurred_at, received_at), "
            f"event_type = {self.ctx.bind(PROPERTIES_EVENT_TYPE, 'String')})"
        )
        return self._property(properties, c)

    # -- shared pieces ------------------------------------------------------------------------

    def _match(self, event_type: str, window_days: float | None, where: Sequence[PropertyFilter]) -> str:
        parts = [f"event_type = {self.ctx.bind(event_type, 'String')}"]
        if window_days is not None:
            window = self.ctx.bind(window_milliseconds(window_days), "Int64")
            parts.append(f"occurred_at > subtractMilliseconds({NOW}, {window})")
        parts.extend(self._property("payload", f) for f in where)
        return " AND ".join(parts)

    def _keys(self, path: str) -> str:
        return ", ".join(self.ctx.bind(key, "String") for key in path.split("."))

    def _property(self, doc: str, f: PropertyFilter) -> str:
        keys = self._keys(f.property)
        kind = f"JSONType({doc}, {keys})"
        if f.operator == "exists":
            return f"{kind} != 'Null'"
        if f.operator == "not_exists":
            return f"{kind} = 'Null'"
        if f.operator in ("in", "not_in"):
            assert isinstance(f.value, list)
            found = self._one_of(doc, keys, f.value)
            return found if f.operator == "in" else f"NOT {found}"
        assert f.value is not None and not isinstance(f.value, list)
        if f.operator == "contains":
            text = f"JSONExtractString({doc}, {keys})"
            return f"({kind} = 'String' AND position({text}, {self.ctx.bind(f.value, 'String')}) > 0)"
        if f.operator == "neq":
            return f"NOT {self._compare(doc, keys, 'eq', f.value)}"
        return self._compare(doc, keys, f.operator, f.value)

    def _compare(self, doc: str, keys: str, operator: str, value: str | bool | float) -> str:
        kind = f"JSONType({doc}, {keys})"
        op = _COMPARE[operator]
        if isinstance(value, bool):
            return f"({kind} = 'Bool' AND JSONExtractBool({doc}, {keys}) {op} {self.ctx.bind(int(value), 'UInt8')})"
        if isinstance(value, str):
            return f"({kind} = 'String' AND JSONExtractString({doc}, {keys}) {op} {self.ctx.bind(value, 'String')})"
        number = self.ctx.bind(float(value), "Float64")
        return f"({kind} IN {_NUMERIC_TYPES} AND JSONExtractFloat({doc}, {keys}) {op} {number})"

    def _one_of(self, doc: str, keys: str, values: Sequence[str | bool | float]) -> str:
        kind = f"JSONType({doc}, {keys})"
        parts = []
        strings = [v for v in values if isinstance(v, str)]
        booleans = sorted({int(v) for v in values if isinstance(v, bool)})
        numbers = [float(v) for v in values if not isinstance(v, (str, bool))]
        if strings:
            bound = self.ctx.bind(strings, "Array(String)")
            parts.append(f"({kind} = 'String' AND JSONExtractString({doc}, {keys}) IN {bound})")
        if booleans:
            bound = self.ctx.bind(booleans, "Array(UInt8)")
            parts.append(f"({kind} = 'Bool' AND JSONExtractBool({doc}, {keys}) IN {bound})")
        if numbers:
            bound = self.ctx.bind(numbers, "Array(Float64)")
            parts.append(f"({kind} IN {_NUMERIC_TYPES} AND JSONExtractFloat({doc}, {keys}) IN {bound})")
        return "(" + " OR ".join(parts) + ")" if parts else "0"


def _pass(source: EventSource, compiler: _Compiler) -> str:
    """The one aggregate pass over the source, grouped by user.

    Forced short-circuit evaluation: JSON is parsed only for rows whose event type matches (the
    default mode judges JSON functions too cheap to skip and parses every row of the tenant).
    """
    aggregates = "".join(f",\n    {sql} AS {alias}" for sql, alias in compiler.aggregates.items())
    return (
        f"SELECT user_id{aggregates}\n"
        f"  FROM {source.relation}\n"
        f"  WHERE {source.predicate} AND occurred_at <= {NOW}\n"
        f"  GROUP BY user_id\n"
        f"  SETTINGS short_circuit_function_evaluation = 'force_enable'"
    )


def _check_source(source: EventSource) -> None:
    if any(not name.startswith("src_") for name in source.params):
        raise ValueError("event source parameters must be prefixed src_")


def compile_segment(definition: SegmentDefinition, source: EventSource | None = None) -> CompiledQuery:
    """One segment: the rows (`user_id`) are its members at `now`."""
    source = source or tenant_events()
    _check_source(source)
    compiler = _Compiler(_Context())
    condition = compiler.node(definition)
    sql = f"SELECT user_id FROM (\n  {_pass(source, compiler)}\n)\nWHERE {condition}"
    return CompiledQuery(sql, {**compiler.ctx.params, **source.params})


def compile_segments(
    definitions: Sequence[tuple[int, SegmentDefinition]],
    source: EventSource | None = None,
    *,
    members_only: bool = True,
) -> CompiledQuery:
    """Many segments in one pass: `user_id` plus one boolean column per segment (see `.columns`).

    Equal aggregates of different segments are computed once. Only users in at least one segment
    are returned, unless `members_only=False` (every user of the source, e.g. the sandbox's two
    labelled histories; it also spares ClickHouse analysing the segment expressions a second time).
    """
    if not definitions:
        raise ValueError("compile_segments needs at least one segment")
    source = source or tenant_events()
    _check_source(source)
    compiler = _Compiler(_Context())
    columns: dict[int, str] = {}
    selected = []
    for segment_id, definition in definitions:
        if segment_id in columns:
            raise ValueError(f"segment {segment_id} listed twice")
        columns[segment_id] = segment_column(segment_id)
        selected.append(f",\n  {compiler.node(definition)} AS {quote_identifier(columns[segment_id])}")
    sql = f"SELECT user_id{''.join(selected)}\nFROM (\n  {_pass(source, compiler)}\n)"
    if members_only:
        sql += "\nWHERE " + " OR ".join(quote_identifier(column) for column in columns.values())
    return CompiledQuery(sql, {**compiler.ctx.params, **source.params}, columns)
