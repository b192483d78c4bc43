"""One plain-English line per condition of a definition, whichever provider drafted it."""

from __future__ import annotations

from typing import Any

from segops.dsl import Condition, EventCount, Group, Monetary, PropertyFilter, Recency, SegmentDefinition, UserProperty

_WORDS = {
    "eq": "exactly",
    "neq": "not exactly",
    "gt": "more than",
    "gte": "at least",
    "lt": "fewer than",
    "lte": "at most",
}
_PROPERTY_WORDS = {
    "eq": "is",
    "neq": "is not",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "in": "is one of",
    "not_in": "is none of",
    "contains": "contains",
}
_METRICS = {"sum": "sum", "avg": "average", "min": "smallest", "max": "largest", "count": "number of values"}


def explain(definition: SegmentDefinition) -> list[str]:
    """Depth first, one line per leaf condition; a line names the group logic joining it to its siblings."""
    lines: list[str] = []
    _walk(definition, 0, lines)
    return lines


def _walk(group: Group, depth: int, lines: list[str]) -> None:
    for index, node in enumerate(group.conditions):
        joiner = "" if index == 0 else ("and " if group.logic == "AND" else "or ")
        if isinstance(node, Group):
            lines.append(f"{'  ' * depth}{joiner}any of:" if node.logic == "OR" else f"{'  ' * depth}{joiner}all of:")
            _walk(node, depth + 1, lines)
        else:
            lines.append(f"{'  ' * depth}{joiner}{describe(node)}")


def describe(condition: Condition) -> str:
    if isinstance(condition, EventCount):
        if (condition.operator == "eq" and condition.value == 0) or (
            condition.operator == "lt" and condition.value == 1
        ):
            text = f"never did {condition.event_type}"
        else:
            times = "time" if condition.value == 1 else "times"
            text = f"did {condition.event_type} {_WORDS[condition.operator]} {condition.value} {times}"
        return text + _where(condition.where) + _window(condition.window_days)
    if isinstance(condition, Monetary):
        return (
            f"{_METRICS[condition.metric]} of {condition.event_type}.{condition.property}{_where(condition.where)}"
            f" {_PROPERTY_WORDS[condition.operator]} {_number(condition.value)}{_window(condition.window_days)}"
        )
    if isinstance(condition, Recency):
        days = _number(condition.window_days)
        if condition.operator in ("gt", "gte"):
            return f"last did {condition.event_type} more than {days} days ago (or never)"
        return f"did {condition.event_type} within the last {days} days"
    assert isinstance(condition, UserProperty)
    return f"user property {_filter(condition)}"


def _filter(f: PropertyFilter) -> str:
    if f.operator == "exists":
        return f"{f.property} is set"
    if f.operator == "not_exists":
        return f"{f.property} is not set"
    return f"{f.property} {_PROPERTY_WORDS[f.operator]} {_value(f.value)}"


def _where(filters: list[PropertyFilter]) -> str:
    return "".join(f" where {_filter(f)}" if i == 0 else f" and {_filter(f)}" for i, f in enumerate(filters))


def _window(days: float | None) -> str:
    return "" if days is None else f" in the last {_number(days)} days"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return _number(value)
