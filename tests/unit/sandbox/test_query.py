"""The sandbox's one query: both labelled histories, every segment column, no member filter."""

from __future__ import annotations

from datetime import UTC, datetime

from segops.dsl import compile_segments, parse_definition
from segops.sandbox.service import SimulatedEvent, both_histories

AT = datetime(2026, 4, 25, 14, 0, tzinfo=UTC)


def test_all_users_kept_when_members_only_is_false() -> None:
    definition = parse_definition(
        {"logic": "AND", "conditions": [{"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}]}
    )
    kept = compile_segments([(7, definition)], members_only=False)
    filtered = compile_segments([(7, definition)])
    assert filtered.sql == kept.sql + "\nWHERE `s_7`"
    assert kept.params == filtered.params and kept.columns == filtered.columns == {7: "s_7"}


def test_simulated_event_is_bound_never_inlined() -> None:
    event = SimulatedEvent("o'brien; DROP TABLE events", "order_placed", AT, {"total": 520, "note": "'; --"})
    source = both_histories(event, AT, AT)
    assert "o'brien" not in source.relation and "DROP" not in source.relation and "520" not in source.relation
    assert "{tenant_id:UInt64}" in source.relation and "{src_user_id:String}" in source.relation
    assert source.params == {
        "src_user_id": "o'brien; DROP TABLE events",
        "src_event_type": "order_placed",
        "src_occurred_at": AT,
        "src_received_at": AT,
        "src_payload": '{"total":520,"note":"\'; --"}',
    }
