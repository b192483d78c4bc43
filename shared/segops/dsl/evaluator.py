"""Segment definitions evaluated in Python for ONE user (the sandbox), with the compiler's semantics.

The compiled SQL answers for a whole tenant; for one user ClickHouse would spend most of its time
analysing the query (docs/performance.md). Here the user's history is indexed once per evaluation:

- per event type, the events at or before `now` ordered by `occurred_at`, so a window
  (`occurred_at > now - window`) is a suffix found by bisection;
- payloads are parsed at most once per event, and only for event types a condition looks into;
- the events passing a `where` list, and the numeric amounts of a payload path among them, are
  computed once per distinct list/path and shared by every condition and segment that names them.

`UserHistory.with_event` adds an event and shares every index the event's type does not touch, so
"with and without this event" costs little more than one evaluation.

Semantics are exactly `segops.dsl.compiler`'s (docs/design.md §5, docs/compute.md), and a property
test holds the two together on random definitions and histories. Two cases where ClickHouse itself
is not deterministic are pinned here: a `sum` is exactly rounded (`math.fsum`; ClickHouse adds
floats in an unspecified order), and of two `context_identified` events with the same
`(occurred_at, received_at)` the one with the greater payload text gives the properties
(ClickHouse's `argMax` keeps either). A payload that is not valid JSON has no properties, as
ClickHouse's JSON functions read it.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from segops.dsl.compiler import PROPERTIES_EVENT_TYPE, window_milliseconds
from segops.dsl.models import (
    Condition,
    EventCount,
    Group,
    Monetary,
    PropertyFilter,
    Recency,
    UserProperty,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_MISSING = object()
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}


def epoch_milliseconds(at: datetime) -> int:
    """`at` at the warehouse's resolution (`DateTime64(3)` truncates a bound datetime to the ms)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at - _EPOCH) // _MILLISECOND


@dataclass(frozen=True)
class EventColumns:
    """Events of one type as parallel columns: `occurred_at`/`received_at` in epoch milliseconds and
    the payload as its JSON text, in any order."""

    occurred_at: Sequence[int]
    received_at: Sequence[int]
    payloads: Sequence[str]


def _parse(payload: str) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _lookup(doc: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return _MISSING
        doc = doc.get(key, _MISSING)
        if doc is _MISSING:
            return _MISSING
    return _MISSING if doc is None else doc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same_kind(actual: Any, expected: Any) -> bool:
    """JSON types as the compiler tells them apart: boolean, number, string (anything else is none)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool)
    if isinstance(expected, str):
        return isinstance(actual, str)
    return _is_number(actual)


def _compare(actual: Any, operator: str, expected: Any) -> bool:
    """A present value against a filter operand of the same JSON type; numbers compare as doubles."""
    if not _same_kind(actual, expected):
        return False
    if isinstance(expected, bool):
        return operator in ("eq", "neq") and _ORDER[operator](actual, expected)
    if isinstance(expected, str):
        # Python orders str by code point, which is UTF-8 byte order: ClickHouse's string order.
        return _ORDER[operator](actual, expected)
    return _ORDER[operator](float(actual), float(expected))


def _filter_holds(doc: Any, keys: Sequence[str], f: PropertyFilter) -> bool:
    actual = _lookup(doc, keys)
    operator = f.operator
    if operator == "exists":
        return actual is not _MISSING
    if operator == "not_exists":
        return actual is _MISSING
    if operator in ("in", "not_in"):
        assert isinstance(f.value, list)
        found = actual is not _MISSING and any(_compare(actual, "eq", v) for v in f.value)
        return found if operator == "in" else not found
    if operator == "neq":
        return actual is _MISSING or not _compare(actual, "eq", f.value)
    if actual is _MISSING:
        return False
    if operator == "contains":
        return isinstance(actual, str) and isinstance(f.value, str) and f.value in actual
    return _compare(actual, operator, f.value)


def _typed(value: Any) -> Any:
    """A hashable cache key that keeps `True`, `1` and `1.0` apart (they are different JSON values)."""
    if isinstance(value, list):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


def _where_key(where: Sequence[PropertyFilter]) -> tuple[Any, ...]:
    return tuple((f.property, f.operator, _typed(f.value)) for f in where)


class _Events:
    """Events of one type at or before `now`, ordered by `occurred_at`; payloads parsed on first use."""

    def __init__(self, occurred: list[int], received: list[int], payloads: list[str], docs: list[Any] | None) -> None:
        self.occurred = occurred
        self.received = received
        self.payloads = payloads
        self._docs = docs
        self._selected: dict[tuple[Any, ...], _Events] = {}
        self._amounts: dict[str, tuple[list[int], list[float]]] = {}

    @classmethod
    def at(cls, columns: EventColumns, now_ms: int) -> _Events:
        rows = sorted(
            (o, r, p)
            for o, r, p in zip(columns.occurred_at, columns.received_at, columns.payloads, strict=True)
            if o <= now_ms
        )
        return cls([o for o, _, _ in rows], [r for _, r, _ in rows], [p for _, _, p in rows], None)

    def docs(self) -> list[Any]:
        if self._docs is None:
            self._docs = [_parse(p) for p in self.payloads]
        return self._docs

    def inserted(self, occurred: int, received: int, payload: str) -> _Events:
        """These events plus one; already parsed payloads are kept."""
        index = bisect_right(self.occurred, occurred)
        docs = None if self._docs is None else [*self._docs[:index], _parse(payload), *self._docs[index:]]

        def put(column: list[Any], value: Any) -> list[Any]:
            return [*column[:index], value, *column[index:]]

        return _Events(put(self.occurred, occurred), put(self.received, received), put(self.payloads, payload), docs)

    def matching(self, where: Sequence[PropertyFilter]) -> _Events:
        """The events every filter holds for (the same object for an empty list)."""
        if not where:
            return self
        key = _where_key(where)
        selected = self._selected.get(key)
        if selected is None:
            filters = [(f.property.split("."), f) for f in where]
            docs = self.docs()
            kept = [i for i, doc in enumerate(docs) if all(_filter_holds(doc, keys, f) for keys, f in filters)]
            selected = _Events(
                [self.occurred[i] for i in kept],
                [self.received[i] for i in kept],
                [self.payloads[i] for i in kept],
                [docs[i] for i in kept],
            )
            self._selected[key] = selected
        return selected

    def amounts(self, path: str) -> tuple[list[int], list[float]]:
        """`occurred_at` and value of the events whose `path` is a number, in `occurred_at` order."""
        found = self._amounts.get(path)
        if found is None:
            keys = path.split(".")
            occurred: list[int] = []
            values: list[float] = []
            for at, doc in zip(self.occurred, self.docs(), strict=True):
                value = _lookup(doc, keys)
                if _is_number(value):
                    occurred.append(at)
                    values.append(float(value))
            found = self._amounts[path] = (occurred, values)
        return found


class UserHistory:
    """One user's events at `now`, indexed for evaluating any number of segments."""

    def __init__(self, events: Mapping[str, EventColumns], now: datetime) -> None:
        self.now = now
        self.now_ms = epoch_milliseconds(now)
        self._types = {event_type: _Events.at(columns, self.now_ms) for event_type, columns in events.items()}
        self._properties: Any = _MISSING

    @property
    def in_universe(self) -> bool:
        """Whether the user has an event at or before `now` (the compiler's universe)."""
        return any(events.occurred for events in self._types.values())

    def with_event(self, event_type: str, occurred_at: datetime, received_at: datetime, payload: str) -> UserHistory:
        """This history plus one event; indexes of the other event types are shared, not rebuilt."""
        copy = UserHistory({}, self.now)
        copy._types = dict(self._types)
        occurred, received = epoch_milliseconds(occurred_at), epoch_milliseconds(received_at)
        if occurred <= self.now_ms:
            copy._types[event_type] = self._events(event_type).inserted(occurred, received, payload)
        if event_type != PROPERTIES_EVENT_TYPE:
            copy._properties = self._properties
        return copy

    def members(self, segments: Iterable[tuple[int, Group]]) -> set[int]:
        """Ids of the segments the user is in (none outside the universe)."""
        if not self.in_universe:
            return set()
        return {segment_id for segment_id, definition in segments if self.holds(definition)}

    def holds(self, node: Group | Condition) -> bool:
        """Whether the definition (or one condition of it) holds; the universe is the caller's check."""
        if isinstance(node, Group):
            results = (self.holds(child) for child in node.conditions)
            return all(results) if node.logic == "AND" else any(results)
        if isinstance(node, EventCount):
            return self._event_count(node)
        if isinstance(node, Monetary):
            return self._monetary(node)
        if isinstance(node, Recency):
            return self._recency(node)
        return self._user_property(node)

    def _events(self, event_type: str) -> _Events:
        # A fresh empty index for a type the user never had: nothing to share, nothing to cache.
        return self._types.get(event_type) or _Events([], [], [], [])

    def _cutoff(self, occurred: list[int], window_days: float | None) -> int:
        """Index of the first event inside the window (`occurred_at > now - window`)."""
        if window_days is None:
            return 0
        return bisect_right(occurred, self.now_ms - window_milliseconds(window_days))

    def _event_count(self, c: EventCount) -> bool:
        occurred = self._events(c.event_type).matching(c.where).occurred
        count = len(occurred) - self._cutoff(occurred, c.window_days)
        return _ORDER[c.operator](count, c.value)

    def _monetary(self, c: Monetary) -> bool:
        occurred, values = self._events(c.event_type).matching(c.where).amounts(c.property)
        window = values[self._cutoff(occurred, c.window_days) :]
        if c.metric == "count":
            measured = float(len(window))
        elif c.metric == "sum":
            measured = math.fsum(window)
        elif not window:
            return False  # avg/min/max of no values (docs/design.md §5)
        elif c.metric == "avg":
            measured = math.fsum(window) / len(window)
        else:
            measured = min(window) if c.metric == "min" else max(window)
        return _ORDER[c.operator](measured, float(c.value))

    def _recency(self, c: Recency) -> bool:
        occurred = self._events(c.event_type).occurred
        if not occurred:
            return c.operator in ("gt", "gte")  # never did it: infinitely long ago
        return _ORDER[c.operator](self.now_ms - occurred[-1], window_milliseconds(c.window_days))

    def _user_property(self, c: UserProperty) -> bool:
        if self._properties is _MISSING:
            self._properties = self._latest_properties()
        return _filter_holds(self._properties, c.property.split("."), c)

    def _latest_properties(self) -> Any:
        """Payload of the latest `context_identified` at `now`, by `occurred_at` then `received_at`."""
        identified = self._events(PROPERTIES_EVENT_TYPE)
        if not identified.occurred:
            return None
        latest = max(
            range(len(identified.occurred)),
            key=lambda i: (identified.occurred[i], identified.received[i], identified.payloads[i]),
        )
        return identified.docs()[latest]
