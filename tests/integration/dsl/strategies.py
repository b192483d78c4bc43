"""Hypothesis strategies: small random histories and definitions that hit docs/design.md §5's edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from tests.support.dsl_reference import Event

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOWS = (1, 2.5, 30)
USERS = ("u0", "u1", "u2", "u3", "ü'4")
EVENT_TYPES = ("a", "b", "context_identified")
KEYS = ("total", "plan", "n")
HOSTILE = ("'", "\\", "{now:String}", "') OR 1=1 --", "`x`", "é")
# Count thresholds at the edges of the signed and unsigned 64-bit integers.
HUGE_COUNTS = (2**63 - 1, 2**63, 2**64 - 1)
# Strings spelled like the JSON text of other values in the payloads (numbers, booleans, an object):
# JSONExtractString returns that text for non-strings on newer servers; only strings may match.
LOOKALIKES = ("2", "-2", "2.5", "true", '{"k":"pro"}')

strings = st.sampled_from(("", "pro", "free", "pr", *HOSTILE, *LOOKALIKES))
numbers = st.sampled_from((-2, 0, -0.0, 1, 2, 2.5, 3, 10, 100))
scalars = st.one_of(strings, numbers, st.booleans())
json_values = st.one_of(scalars, st.none(), st.fixed_dictionaries({"k": scalars}))
payloads = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3)


def _offsets() -> st.SearchStrategy[int]:
    # Milliseconds relative to NOW, concentrated on window boundaries and `now` itself.
    edges = [0, 1, -1]
    for days in WINDOWS:
        w = round(days * 86_400_000)
        edges += [-w, -w + 1, -w - 1]
    return st.one_of(st.sampled_from(edges), st.integers(-40 * 86_400_000, 2 * 86_400_000))


@st.composite
def histories(draw: st.DrawFn, max_size: int = 25) -> list[Event]:
    raw = draw(
        st.lists(
            st.tuples(st.sampled_from(USERS), st.sampled_from(EVENT_TYPES), _offsets(), payloads), max_size=max_size
        )
    )
    return timed(raw)


def timed(raw: list[tuple[str, str, int, dict[str, Any]]]) -> list[Event]:
    """Events from (user, event type, milliseconds after NOW, payload) tuples, received in order."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Event(user, kind, NOW + timedelta(milliseconds=offset), base + timedelta(seconds=i), payload)
        for i, (user, kind, offset, payload) in enumerate(raw)
    ]


# Explicit example for the property tests: numeric `in`/`not_in` with signed zeros on both sides
# (-0.0 = 0 as `eq` says, although ClickHouse's IN hashes the two doubles differently).
SIGNED_ZEROS = timed([("u0", "a", -1, {"total": -0.0}), ("u1", "a", -1, {"total": 0}), ("u2", "a", -1, {"total": 0.0})])
ZERO_IN = {"logic": "AND", "conditions": [
    {"type": "event_count", "event_type": "a", "operator": "gte", "value": 1,
     "where": [{"property": "total", "operator": "in", "value": [0]}]}]}  # fmt: skip
MINUS_ZERO_NOT_IN = {"logic": "AND", "conditions": [
    {"type": "event_count", "event_type": "a", "operator": "gte", "value": 1,
     "where": [{"property": "total", "operator": "not_in", "value": [2, -0.0]}]}]}  # fmt: skip


ops = st.sampled_from(("eq", "neq", "gt", "gte", "lt", "lte"))
paths = st.sampled_from(("total", "plan", "n.k", "missing"))


@st.composite
def property_filters(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(
        st.sampled_from(("eq", "neq", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "exists", "not_exists"))
    )
    found: dict[str, Any] = {"property": draw(paths), "operator": operator}
    if operator in ("in", "not_in"):
        found["value"] = draw(st.lists(scalars, max_size=3))
    elif operator == "contains":
        found["value"] = draw(strings)
    elif operator in ("gt", "gte", "lt", "lte"):
        found["value"] = draw(st.one_of(strings, numbers))
    elif operator in ("eq", "neq"):
        found["value"] = draw(scalars)
    return found


windows = st.one_of(st.none(), st.sampled_from(WINDOWS))


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(("event_count", "monetary", "recency", "user_property")))
    event_type = draw(st.sampled_from(("a", "b")))
    if kind == "user_property":
        return {"type": kind, **draw(property_filters())}
    if kind == "recency":
        return {
            "type": kind,
            "event_type": event_type,
            "operator": draw(st.sampled_from(("gt", "gte", "lt", "lte"))),
            "window_days": draw(st.sampled_from(WINDOWS)),
        }
    found: dict[str, Any] = {"type": kind, "event_type": event_type, "operator": draw(ops)}
    if kind == "event_count":
        # Counts past Int64 too: the warehouse compares them as UInt64, the evaluator as Python ints.
        found["value"] = draw(st.one_of(st.integers(0, 3), st.sampled_from(HUGE_COUNTS)))
    else:
        found["property"] = draw(st.sampled_from(("total", "n.k")))
        found["metric"] = draw(st.sampled_from(("sum", "avg", "min", "max", "count")))
        found["value"] = draw(numbers)
    window = draw(windows)
    if window is not None:
        found["window_days"] = window
    where = draw(st.lists(property_filters(), max_size=2))
    if where:
        found["where"] = where
    return found


def definitions(max_leaves: int = 4) -> st.SearchStrategy[dict[str, Any]]:
    def group(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries(
            {"logic": st.sampled_from(("AND", "OR")), "conditions": st.lists(children, min_size=1, max_size=3)}
        )

    tree = st.recursive(conditions(), group, max_leaves=max_leaves)
    return tree.map(lambda node: node if "logic" in node else {"logic": "AND", "conditions": [node]})
