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

Stored events (`StoredEvents`, the default) are read through the per-user day states of migration
0600 (docs/design.md §6): one `UNION ALL` of state rows (days before `now`'s day that are not
boundary days), boundary-day rows of `event_days` (`now`'s day and each window's first day, one row
per event) and, for conditions the states cannot answer (a `where` filter, a payload path other
than `HOT_PATH`), the raw `events` rows of those conditions' event types, aggregated per user in
their own branch (one row per user carrying those aggregates, `r0`, `r1`, ..., which are zero in
the other branches, so a `sum` over the union returns them; the branch reads only rows one of those
aggregates' filters holds for). Each event is
in exactly one state or boundary row, and a row is inside a window `(now - W, now]` exactly when its
`window_at` is after `now - W`: a boundary row's is its `occurred_at`; a state day is never a
window's first day, so it lies wholly inside the window or wholly before it, and its `window_at` is
its first millisecond. An `EventSource` (rows of any relation) is aggregated raw, with the same semantics.

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
from segops.dsl.sources import EventSource, StoredEvents, tenant_events
from segops.warehouse.identifiers import quote_identifier, segment_column
from segops.warehouse.params import array_item_bytes, array_parts, string_parts

NOW = "{now:DateTime64(3, 'UTC')}"
PROPERTIES_EVENT_TYPE = "context_identified"
MS_PER_DAY = 86_400_000
_NUMERIC_TYPES = "('Int64', 'UInt64', 'Double')"
# The one payload path whose numeric values the states aggregate (migration 0600's typed columns).
HOT_PATH = "total"
_NOW_DAY = f"toDate32({NOW})"
_COMPARE = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# A bound parameter is one field of a request to a ClickHouse server, which refuses a field over
# 128 KiB (`http_max_field_value_size`): an `in` list of long strings (a thousand page URLs), or one
# long string, is bound in parts of at most this many bytes as the server reads them, concatenated
# back in the SQL.
PARAM_PART_BYTES = 100_000


def window_milliseconds(window_days: float) -> int:
    """The resolution every window and recency threshold is evaluated at."""
    return round(window_days * MS_PER_DAY)


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: dict[str, Any]
    columns: dict[int, str] = field(default_factory=dict)
    aggregates: int = 0  # per-user aggregate states of the pass (what its GROUP BY holds per user)

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
    """Conditions become boolean expressions over named per-user aggregates (`a0`, `a1`, ...).

    `stored`: aggregates read the union of states, boundary rows and raw rows (see the module doc);
    otherwise they read the source's raw rows.
    """

    def __init__(self, context: _Context, *, stored: bool) -> None:
        self.ctx = context
        self.stored = stored
        self.aggregates: dict[str, str] = {}
        self.windows: set[str] = set()  # bound window placeholders: their first days are boundary days
        self.raw_types: set[str] = set()  # event types of conditions read from raw events
        self.raw_aggregates: dict[str, str] = {}  # stored pass: aggregates of the raw-events branch
        self.raw_matches: dict[str, None] = {}  # stored pass: the rows each raw aggregate reads (ordered)
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
        if self.stored and not c.where:
            counted = self.aggregate(f"sumIf(events, {self._stored_match(c.event_type, c.window_days)})")
        else:
            match = self._match(c.event_type, c.window_days, c.where)
            counted = self._raw(f"countIf({match})", match)
        return f"{counted} {_COMPARE[c.operator]} {self.ctx.bind(c.value, 'UInt64')}"

    def _monetary(self, c: Monetary) -> str:
        aggregate = self.aggregate
        if self.stored and not c.where and c.property == HOT_PATH:
            match = self._stored_match(c.event_type, c.window_days)
            seen, total = f"sumIf(totals, {match})", f"sumIf(total_sum, {match})"
            extreme = f"{c.metric}If(total_{c.metric}, {match})"
        else:
            doc = "payload"
            keys = self._keys(c.property)
            match = (
                f"{self._match(c.event_type, c.window_days, c.where)} AND JSONType({doc}, {keys}) IN {_NUMERIC_TYPES}"
            )

            def aggregate(sql: str) -> str:
                return self._raw(sql, match)

            # `if` is evaluated lazily: only matching rows pay for the JSON parse (an -If aggregate's
            # argument alone would be computed for every row of the tenant).
            amount = f"if({match}, JSONExtractFloat({doc}, {keys}), 0)"
            seen, total, extreme = f"countIf({match})", f"sumIf({amount}, {match})", f"{c.metric}If({amount}, {match})"
        value = self.ctx.bind(c.value, "Float64")
        op = _COMPARE[c.operator]
        if c.metric == "count":
            return f"{aggregate(seen)} {op} {value}"
        if c.metric == "sum":
            return f"{aggregate(total)} {op} {value}"
        # avg/min/max of no values make the condition false (docs/design.md §5).
        seen = aggregate(seen)
        if c.metric == "avg":
            return f"({seen} > 0 AND {aggregate(total)} / {seen} {op} {value})"
        return f"({seen} > 0 AND {aggregate(extreme)} {op} {value})"

    def _recency(self, c: Recency) -> str:
        if self.stored:
            match = self._stored_match(c.event_type, None)
            last, seen = f"maxIf(occurred_at, {match})", f"sumIf(events, {match})"
        else:
            match = self._match(c.event_type, None, [])
            last, seen = f"maxIf(occurred_at, {match})", f"countIf({match})"
        since = f"dateDiff('millisecond', {self.aggregate(last)}, {NOW})"
        window = self.ctx.bind(window_milliseconds(c.window_days), "Int64")
        seen = self.aggregate(seen)
        # Never did it = infinitely long ago: greater-than holds, less-than does not.
        if c.operator in ("gt", "gte"):
            return f"({seen} = 0 OR {since} {_COMPARE[c.operator]} {window})"
        return f"({seen} > 0 AND {since} {_COMPARE[c.operator]} {window})"

    def _user_property(self, c: UserProperty) -> str:
        if self.stored:
            # The latest (occurred_at, received_at, payload) of the user's context_identified events.
            latest = f"maxIf(identity, {self._stored_match(PROPERTIES_EVENT_TYPE, None)})"
            properties = self.aggregate(f"tupleElement({latest}, 3)")
        else:
            properties = self.aggregate(
                f"argMaxIf(payload, (occurred_at, received_at), "
                f"event_type = {self.ctx.bind(PROPERTIES_EVENT_TYPE, 'String')})"
            )
        return self._property(properties, c)

    # -- shared pieces ------------------------------------------------------------------------

    def _raw(self, sql: str, match: str) -> str:
        """An aggregate over raw rows (those `match` holds for): in a stored pass, computed in the
        raw-events branch per user."""
        if not self.stored:
            return self.aggregate(sql)
        self.raw_matches[match] = None
        partial = self.raw_aggregates.get(sql)
        if partial is None:
            partial = quote_identifier(f"r{len(self.raw_aggregates)}")
            self.raw_aggregates[sql] = partial
        return self.aggregate(f"sum({partial})")

    def _match(self, event_type: str, window_days: float | None, where: Sequence[PropertyFilter]) -> str:
        """Raw rows of a condition: the source's, or in a stored pass the raw `events` branch."""
        parts = [f"event_type = {self.ctx.bind(event_type, 'String')}"]
        if self.stored:
            self.raw_types.add(event_type)
        if window_days is not None:
            window = self.ctx.bind(window_milliseconds(window_days), "Int64")
            parts.append(f"occurred_at > subtractMilliseconds({NOW}, {window})")
        parts.extend(self._property("payload", f) for f in where)
        return " AND ".join(parts)

    def _stored_match(self, event_type: str, window_days: float | None) -> str:
        """State and boundary rows of one event type in the window."""
        kind = f"event_type = {self.ctx.bind(event_type, 'String')}"
        if window_days is None:
            return kind
        window = self.ctx.bind(window_milliseconds(window_days), "Int64")
        self.windows.add(window)
        return f"{kind} AND window_at > subtractMilliseconds({NOW}, {window})"

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
            assert isinstance(f.value, str)  # the model takes only a string for `contains`
            text = f"JSONExtractString({doc}, {keys})"
            return f"({kind} = 'String' AND position({text}, {self._string(f.value)}) > 0)"
        if f.operator == "neq":
            return f"NOT {self._compare(doc, keys, 'eq', f.value)}"
        return self._compare(doc, keys, f.operator, f.value)

    def _compare(self, doc: str, keys: str, operator: str, value: str | bool | float) -> str:
        kind = f"JSONType({doc}, {keys})"
        op = _COMPARE[operator]
        if isinstance(value, bool):
            return f"({kind} = 'Bool' AND JSONExtractBool({doc}, {keys}) {op} {self.ctx.bind(int(value), 'UInt8')})"
        if isinstance(value, str):
            text = f"JSONExtractString({doc}, {keys}) {op} {self._string(value)}"
            unlike = operator == "eq" and _unlike_other_json(value)  # an ordering needs the type check
            return f"({text})" if unlike else f"({kind} = 'String' AND {text})"
        number = self.ctx.bind(float(value), "Float64")
        return f"({kind} IN {_NUMERIC_TYPES} AND JSONExtractFloat({doc}, {keys}) {op} {number})"

    def _string(self, value: str) -> str:
        """`value` as one `String` parameter, or as several concatenated (PARAM_PART_BYTES)."""
        parts = string_parts(value, PARAM_PART_BYTES)
        if len(parts) <= 1:
            return self.ctx.bind(value, "String")
        return f"concat({', '.join(self.ctx.bind(part, 'String') for part in parts)})"

    def _strings(self, strings: list[str]) -> str:
        """`strings` as one `Array(String)` parameter, or as several concatenated (PARAM_PART_BYTES); a
        value too long for a part of its own is an array of one `_string`."""
        fitting: list[str] = []
        long: list[str] = []
        for value in strings:
            (fitting if array_item_bytes(value) <= PARAM_PART_BYTES else long).append(value)
        bound = [self.ctx.bind(part, "Array(String)") for part in array_parts(fitting, PARAM_PART_BYTES)]
        bound += [f"[{self._string(value)}]" for value in long]
        return bound[0] if len(bound) == 1 else f"arrayConcat({', '.join(bound)})"

    def _one_of(self, doc: str, keys: str, values: Sequence[str | bool | float]) -> str:
        kind = f"JSONType({doc}, {keys})"
        parts = []
        strings = [v for v in values if isinstance(v, str)]
        booleans = sorted({int(v) for v in values if isinstance(v, bool)})
        # `in` is `eq` per element, but IN hashes doubles and -0.0 hashes apart from 0.0: `+ 0`
        # turns -0.0 into 0.0 on both sides (IEEE 754: -0.0 + 0.0 = 0.0).
        numbers = [float(v) + 0.0 for v in values if not isinstance(v, (str, bool))]
        if strings:
            text = f"JSONExtractString({doc}, {keys}) IN {self._strings(strings)}"
            unlike = all(_unlike_other_json(v) for v in strings)
            parts.append(f"({text})" if unlike else f"({kind} = 'String' AND {text})")
        if booleans:
            bound = self.ctx.bind(booleans, "Array(UInt8)")
            parts.append(f"({kind} = 'Bool' AND JSONExtractBool({doc}, {keys}) IN {bound})")
        if numbers:
            bound = self.ctx.bind(numbers, "Array(Float64)")
            parts.append(f"({kind} IN {_NUMERIC_TYPES} AND (JSONExtractFloat({doc}, {keys}) + 0) IN {bound})")
        return "(" + " OR ".join(parts) + ")" if parts else "0"


def _unlike_other_json(value: str) -> bool:
    """Whether `JSONExtractString(...) = value` can hold only for a JSON string equal to `value`, so
    the equality's `JSONType = 'String'` check (a second parse of the document per row) adds nothing.
    For anything but a string the function returns "" (older ClickHouse) or the value's JSON text
    (newer: `5`, `true`, `{"k":1}`; `null` gives ""): a value that is not empty and cannot begin
    such a text equals neither. An ordering (`<`, `>=`, ...) keeps the check."""
    return value != "" and value[0] not in "-0123456789{[" and value not in ("true", "false")


def _pass(source: EventSource | StoredEvents, compiler: _Compiler) -> str:
    """The one aggregate pass over the source, grouped by user.

    Forced short-circuit evaluation: JSON is parsed only for rows whose event type matches (the
    default mode judges JSON functions too cheap to skip and parses every row of the tenant).
    """
    aggregates = "".join(f",\n    {sql} AS {alias}" for sql, alias in compiler.aggregates.items())
    if isinstance(source, StoredEvents):  # every branch applies the tenant, users and `now` itself
        rows = f"(\n{_stored_rows(source, compiler)}\n  )"
    else:
        rows = f"{source.relation}\n  WHERE {source.predicate} AND occurred_at <= {NOW}"
    return (
        f"SELECT user_id{aggregates}\n"
        f"  FROM {rows}\n"
        f"  GROUP BY user_id\n"
        f"  SETTINGS short_circuit_function_evaluation = 'force_enable'"
    )


def _stored_rows(source: StoredEvents, compiler: _Compiler) -> str:
    """The union the stored aggregates read: state rows, boundary-day rows, raw aggregates if needed.

    Every branch has the columns of the state table plus `window_at` and the raw partials; a
    boundary row is one event, so its `occurred_at` is exact (a state row's is the day's latest).
    The raw branch's row per user has an empty event type: no stored aggregate matches it.
    """
    users = f" AND {source.users}" if source.users else ""
    tenant = "tenant_id = {tenant_id:UInt64}"
    boundary = [_NOW_DAY, *(f"toDate32(subtractMilliseconds({NOW}, {w}))" for w in sorted(compiler.windows))]
    days = ", ".join(boundary)
    partials = "".join(f", 0 AS {alias}" for alias in compiler.raw_aggregates.values())
    zeros = ", 0" * len(compiler.raw_aggregates)
    branches = [
        "    SELECT user_id, event_type, toDateTime64(day, 3, 'UTC') AS window_at, last_at AS occurred_at, "
        f"events, totals, total_sum, total_min, total_max, identity{partials}\n"
        f"      FROM user_day_states WHERE {tenant}{users} AND day < {_NOW_DAY} AND day NOT IN ({days})",
        "    SELECT user_id, event_type, occurred_at, occurred_at, toUInt64(1), toUInt64(total IS NOT NULL), "
        f"ifNull(total, 0), ifNull(total, inf), ifNull(total, -inf), (occurred_at, received_at, identity){zeros}\n"
        f"      FROM event_days WHERE {tenant}{users} AND day IN ({days}) AND occurred_at <= {NOW}",
    ]
    if compiler.raw_types:
        types = compiler.ctx.bind(sorted(compiler.raw_types), "Array(String)")
        nothing = "toDateTime64(0, 3, 'UTC')"
        aggregates = "".join(f", {sql}" for sql in compiler.raw_aggregates)
        # Every raw aggregate is an -If of its match: rows no match holds add nothing to any of them,
        # and a user without such rows still has a row in the other branches (zero partials there).
        matched = " OR ".join(f"({match})" for match in compiler.raw_matches)
        branches.append(
            f"    SELECT user_id, '', {nothing}, {nothing}, toUInt64(0), toUInt64(0), 0, inf, -inf, "
            f"({nothing}, {nothing}, ''){aggregates}\n"
            f"      FROM events WHERE {tenant}{users} AND occurred_at <= {NOW} AND event_type IN {types}\n"
            f"        AND ({matched})\n"
            "      GROUP BY user_id"
        )
    return "\n    UNION ALL\n".join(branches)


def _check_source(source: EventSource | StoredEvents) -> None:
    if any(not name.startswith("src_") for name in source.params):
        raise ValueError("event source parameters must be prefixed src_")


def compile_segment(definition: SegmentDefinition, source: EventSource | StoredEvents | None = None) -> CompiledQuery:
    """One segment: the rows (`user_id`) are its members at `now`."""
    source = source or tenant_events()
    _check_source(source)
    compiler = _Compiler(_Context(), stored=isinstance(source, StoredEvents))
    condition = compiler.node(definition)
    sql = f"SELECT user_id FROM (\n  {_pass(source, compiler)}\n)\nWHERE {condition}"
    return CompiledQuery(sql, {**compiler.ctx.params, **source.params})


def compile_segments(
    definitions: Sequence[tuple[int, SegmentDefinition]],
    source: EventSource | StoredEvents | None = None,
    *,
    members_only: bool = True,
) -> CompiledQuery:
    """Many segments in one pass: `user_id` plus one boolean column per segment (see `.columns`).

    Equal aggregates of different segments are computed once. Only users in at least one segment
    are returned, or with `members_only=False` every user of the pass: for a caller that keeps only
    the true columns anyway (the filter plans every segment's expression a second time, ~130 ms for
    50 segments, per statement; docs/performance.md).
    """
    if not definitions:
        raise ValueError("compile_segments needs at least one segment")
    source = source or tenant_events()
    _check_source(source)
    compiler = _Compiler(_Context(), stored=isinstance(source, StoredEvents))
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
    aggregates = len(compiler.aggregates) + len(compiler.raw_aggregates)
    return CompiledQuery(sql, {**compiler.ctx.params, **source.params}, columns, aggregates)
