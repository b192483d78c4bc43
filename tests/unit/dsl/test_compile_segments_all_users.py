"""`compile_segments(..., members_only=False)`: every user of the source, one column per segment."""

from __future__ import annotations

from segops.dsl import compile_segments, parse_definition


def test_all_users_kept_when_members_only_is_false() -> None:
    definition = parse_definition(
        {"logic": "AND", "conditions": [{"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}]}
    )
    kept = compile_segments([(7, definition)], members_only=False)
    filtered = compile_segments([(7, definition)])
    assert filtered.sql == kept.sql + "\nWHERE `s_7`"
    assert kept.params == filtered.params and kept.columns == filtered.columns == {7: "s_7"}
