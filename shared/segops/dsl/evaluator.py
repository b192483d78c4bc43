"""Segment definitions evaluated in Python for ONE user (the sandbox), with the compiler's semantics.

The compiled SQL answers for a whole tenant; for one user ClickHouse would spend most of its time
analysing the query (docs/performance.md). Here the user's history is indexed once per evaluation:

- per event type, the events at or before `now` ordered by `occurred_at`, so a window
  (`occurred_at > now - window`) is a suffix found by bisection;
- payloads are parsed once per event, only for event types a condition looks into, for all the
  payload paths the segments read at once (the parsed documents are not kept);
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
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
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
    conditions,
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
        return None  # ClickHouse's JSON functions read an invalid document as having no keys


def _lookup(doc: Any, keys: Sequence[str]) -> Any:
    """The value at a dotted path, `_MISSING` when absent or JSON null."""
    for key in keys:
        if type(doc) is not dict:
            return _MISSING
        doc = doc.get(key)
    return _MISSING if doc is None else doc


def _getter(path: str) -> Callable[[Any], Any]:
    """`_lookup` of one path; a top-level key (the usual path) without the loop."""
    keys = path.split(".")
    if len(keys) > 1:
        return lambda doc: _lookup(doc, keys)
    [key] = keys

    def get(doc: Any) -> Any:
        value = doc.get(key) if type(doc) is dict else None
        return _MISSING if value is None else value

    return get


def _kind(value: Any) -> str:
    """The JSON types the compiler tells apart (payloads come from `orjson`, so types are exact)."""
    kind = type(value)
    if kind is int or kind is float:
        return "number"
    return "string" if kind is str else "bool" if kind is bool else "other"


Predicate = Callable[[Any], bool]


def _compared(operator: str, expected: str | bool | float) -> Predicate:
    """A value against an operand of the same JSON type; numbers compare as doubles, strings by code
    point, which is UTF-8 byte order (ClickHouse's)."""
    compare = _ORDER[operator]
    kind = _kind(expected)
    if kind == "number":
        number = float(expected)
        return lambda v: _kind(v) == "number" and compare(float(v), number)
    return lambda v: _kind(v) == kind and compare(v, expected)


def _one_of(values: Sequence[str | bool | float]) -> Predicate:
    strings = frozenset(v for v in values if _kind(v) == "string")
    booleans = frozenset(v for v in values if _kind(v) == "bool")
    numbers = frozenset(float(v) for v in values if _kind(v) == "number")

    def found(v: Any) -> bool:
        kind = _kind(v)
        if kind == "number":
            return float(v) in numbers
        return v in strings if kind == "string" else kind == "bool" and v in booleans

    return found


def _predicate(f: PropertyFilter) -> Predicate:
    """The filter as a test of the value at its path (`_MISSING` when absent)."""
    operator, expected = f.operator, f.value
    if operator == "exists":
        return lambda v: v is not _MISSING
    if operator == "not_exists":
        return lambda v: v is _MISSING
    if operator in ("in", "not_in"):
        assert isinstance(expected, list)
        found = _one_of(expected)
        return found if operator == "in" else lambda v: not found(v)
    assert expected is not None and not isinstance(expected, list)
    if operator == "contains":
        return lambda v: type(v) is str and isinstance(expected, str) and expected in v
    if operator == "neq":
        equal = _compared("eq", expected)
        return lambda v: not equal(v)
    return _compared(operator, expected)


def _typed(value: Any) -> Any:
    """A hashable cache key that keeps `True`, `1` and `1.0` apart (they are different JSON values)."""
    if isinstance(value, list):
        return tuple(_typed(v) for v in value)
    return (type(value).__name__, value)


def _where_key(where: Sequence[PropertyFilter]) -> tuple[Any, ...]:
    return tuple((f.property, f.operator, _typed(f.value)) for f in where)


class _Events:
    """Events of one type at or before `now`, ordered by `occurred_at`, with the values at the payload
    paths conditions read.

    Each payload is parsed once for all the paths wanted at that time and the parsed document is
    dropped at once: holding 10k parsed documents would trigger CPython's cyclic collector several
    times per evaluation (measured: a full collection every ~10 evaluations, ~70 ms each under load).
    """

    def __init__(
        self, occurred: list[int], received: list[int], payloads: list[str], values: dict[str, list[Any]]
    ) -> None:
        self.occurred = occurred
        self.received = received
        self.payloads = payloads
        self._values = values
        self._selected: dict[tuple[Any, ...], _Events] = {}
        self._amounts: dict[str, tuple[list[int], list[float]]] = {}

    @classmethod
    def at(cls, columns: EventColumns, now_ms: int) -> _Events:
        occurred, received, payloads = list(columns.occurred_at), list(columns.received_at), list(columns.payloads)
        # Rows arrive in primary-key order, usually: then checking is all the sorting there is (in C).
        if occurred != sorted(occurred):
            order = sorted(range(len(occurred)), key=occurred.__getitem__)
            occurred = [occurred[i] for i in order]
            received = [received[i] for i in order]
            payloads = [payloads[i] for i in order]
        end = bisect_right(occurred, now_ms)
        if end < len(occurred):
            occurred, received, payloads = occurred[:end], received[:end], payloads[:end]
        return cls(occurred, received, payloads, {})

    def extract(self, paths: Iterable[str]) -> None:
        """Read the values at `paths` (those not read yet) in one pass over the payloads."""
        wanted = [path for path in paths if path not in self._values]
        if not wanted:
            return
        columns: list[list[Any]] = [[] for _ in wanted]
        steps = [(column.append, _getter(path)) for column, path in zip(columns, wanted, strict=True)]
        for doc in map(_parse, self.payloads):
            for append, get in steps:
                append(get(doc))
        self._values.update(zip(wanted, columns, strict=True))

    def values(self, path: str) -> list[Any]:
        """The value at `path` of every event (`_MISSING` when absent), in event order."""
        if path not in self._values:
            self.extract([path])
        return self._values[path]

    def inserted(self, occurred: int, received: int, payload: str) -> _Events:
        """These events plus one; the values read so far are carried over."""
        index = bisect_right(self.occurred, occurred)

        def put(column: list[Any], value: Any) -> list[Any]:
            return [*column[:index], value, *column[index:]]

        doc = _parse(payload)
        values = {path: put(column, _getter(path)(doc)) for path, column in self._values.items()}
        return _Events(put(self.occurred, occurred), put(self.received, received), put(self.payloads, payload), values)

    def matching(self, where: Sequence[PropertyFilter]) -> _Events:
        """The events every filter holds for (the same object for an empty list)."""
        if not where:
            return self
        key = _where_key(where)
        selected = self._selected.get(key)
        if selected is None:
            kept: Sequence[int] = range(len(self.occurred))
            for f in where:
                test, values = _predicate(f), self.values(f.property)
                kept = [i for i in kept if test(values[i])]
            selected = _Events(
                [self.occurred[i] for i in kept],
                [self.received[i] for i in kept],
                [self.payloads[i] for i in kept],
                {path: [column[i] for i in kept] for path, column in self._values.items()},
            )
            self._selected[key] = selected
        return selected

    def amounts(self, path: str) -> tuple[list[int], list[float]]:
        """`occurred_at` and value of the events whose `path` is a number, in `occurred_at` order."""
        found = self._amounts.get(path)
        if found is None:
            numbers = [(at, v) for at, v in zip(self.occurred, self.values(path), strict=True) if _kind(v) == "number"]
            found = self._amounts[path] = ([at for at, _ in numbers], [float(v) for _, v in numbers])
        return found


def read_event_types(definitions: Iterable[Group]) -> set[str]:
    """The event types whose events the definitions read: those their conditions name, and the
    identify events user properties come from. Of any other type only its existence matters (the
    universe: `UserHistory.in_universe`)."""
    types = {PROPERTIES_EVENT_TYPE}
    for definition in definitions:
        types.update(c.event_type for c in conditions(definition) if isinstance(c, (EventCount, Monetary, Recency)))
    return types


def _sum(values: list[float]) -> float:
    """The exact sum (`math.fsum`), or, when a partial sum passes the largest double, ±inf as
    ClickHouse's `sum` gives it (fsum raises there instead)."""
    try:
        return math.fsum(values)
    except OverflowError:
        return sum(values)


def _payload_paths(definitions: Iterable[Group]) -> dict[str, set[str]]:
    """Event type → the payload paths the definitions' event conditions read (user properties come
    from one payload, parsed on its own)."""
    paths: dict[str, set[str]] = {}
    for definition in definitions:
        for condition in conditions(definition):
            if isinstance(condition, (EventCount, Monetary)):
                wanted = paths.setdefault(condition.event_type, set())
                wanted.update(f.property for f in condition.where)
                if isinstance(condition, Monetary):
                    wanted.add(condition.property)
    return paths


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

    def members(self, segments: Collection[tuple[int, Group]]) -> set[int]:
        """Ids of the segments the user is in (none outside the universe)."""
        if not self.in_universe:
            return set()
        for event_type, paths in _payload_paths(definition for _, definition in segments).items():
            if event_type in self._types:
                self._types[event_type].extract(paths)
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
        return self._types.get(event_type) or _Events([], [], [], {})

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
            measured = _sum(window)
        elif not window:
            return False  # avg/min/max of no values (docs/design.md §5)
        elif c.metric == "avg":
            measured = _sum(window) / len(window)
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
        return _predicate(c)(_lookup(self._properties, c.property.split(".")))

    def _latest_properties(self) -> Any:
        """Payload of the latest `context_identified` at `now`, by `occurred_at` then `received_at`."""
        identified = self._events(PROPERTIES_EVENT_TYPE)
        if not identified.occurred:
            return None
        latest = max(
            range(len(identified.occurred)),
            key=lambda i: (identified.occurred[i], identified.received[i], identified.payloads[i]),
        )
        return _parse(identified.payloads[latest])
