"""A small pure-Python evaluator of docs/design.md §5, written independently of the compiler: the oracle
the compiled SQL is checked against."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

_MISSING = object()


@dataclass(frozen=True)
class Event:
    user_id: str
    event_type: str
    occurred_at: datetime
    received_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


def _window(days: float) -> timedelta:
    return timedelta(milliseconds=round(days * 86_400_000))


def _lookup(doc: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return _MISSING
        doc = doc[key]
    return _MISSING if doc is None else doc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if _is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _eq(actual: Any, expected: Any) -> bool:
    if actual is _MISSING or _kind(actual) != _kind(expected):
        return False
    if _kind(actual) == "number":
        return float(actual) == float(expected)
    return bool(actual == expected)


_ORDER = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


def property_holds(doc: Any, path: str, operator: str, value: Any) -> bool:
    actual = _lookup(doc, path)
    if operator == "exists":
        return actual is not _MISSING
    if operator == "not_exists":
        return actual is _MISSING
    if operator == "eq":
        return _eq(actual, value)
    if operator == "neq":
        return not _eq(actual, value)
    if operator == "in":
        return any(_eq(actual, v) for v in value)
    if operator == "not_in":
        return not any(_eq(actual, v) for v in value)
    if operator == "contains":
        return isinstance(actual, str) and value in actual
    if actual is _MISSING or _kind(actual) != _kind(value) or _kind(value) not in ("number", "string"):
        return False
    if _kind(value) == "number":
        return bool(_ORDER[operator](float(actual), float(value)))
    return bool(_ORDER[operator](actual.encode(), value.encode()))


def _compare(actual: float, operator: str, value: float) -> bool:
    if operator == "eq":
        return actual == value
    if operator == "neq":
        return actual != value
    return bool(_ORDER[operator](actual, value))


def _matching(events: Sequence[Event], condition: dict[str, Any], now: datetime) -> list[Event]:
    found = [e for e in events if e.event_type == condition["event_type"]]
    if condition.get("window_days") is not None:
        cutoff = now - _window(condition["window_days"])
        found = [e for e in found if e.occurred_at > cutoff]
    for f in condition.get("where", []):
        found = [e for e in found if property_holds(e.payload, f["property"], f["operator"], f.get("value"))]
    return found


def condition_holds(events: Sequence[Event], condition: dict[str, Any], now: datetime) -> bool:
    kind = condition["type"]
    if kind == "event_count":
        return _compare(len(_matching(events, condition, now)), condition["operator"], condition["value"])
    if kind == "monetary":
        amounts = [
            float(a)
            for e in _matching(events, condition, now)
            if _is_number(a := _lookup(e.payload, condition["property"]))
        ]
        metric = condition["metric"]
        if metric in ("sum", "count"):
            measured = math.fsum(amounts) if metric == "sum" else len(amounts)
        elif not amounts:
            return False
        else:
            measured = {"avg": math.fsum(amounts) / len(amounts), "min": min(amounts), "max": max(amounts)}[metric]
        return _compare(measured, condition["operator"], float(condition["value"]))
    if kind == "recency":
        done = [e.occurred_at for e in events if e.event_type == condition["event_type"]]
        if not done:
            return condition["operator"] in ("gt", "gte")
        return _compare(now - max(done), condition["operator"], _window(condition["window_days"]))  # type: ignore[arg-type]
    if kind == "user_property":
        identified = [e for e in events if e.event_type == "context_identified"]
        props = max(identified, key=lambda e: (e.occurred_at, e.received_at)).payload if identified else {}
        return property_holds(props, condition["property"], condition["operator"], condition.get("value"))
    raise ValueError(kind)


def node_holds(events: Sequence[Event], node: dict[str, Any], now: datetime) -> bool:
    if "logic" in node:
        results = (node_holds(events, child, now) for child in node["conditions"])
        return all(results) if node["logic"] == "AND" else any(results)
    return condition_holds(events, node, now)


def members(events: Iterable[Event], definition: dict[str, Any], now: datetime) -> set[str]:
    """Members at `now`: the universe is users with an event at or before `now`; later events do not exist."""
    by_user: dict[str, list[Event]] = {}
    for event in events:
        if event.occurred_at <= now:
            by_user.setdefault(event.user_id, []).append(event)
    return {user for user, history in by_user.items() if node_holds(history, definition, now)}
