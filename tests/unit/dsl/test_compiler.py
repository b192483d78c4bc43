"""Golden tests: one `assert_compiles` call per case. Values only ever appear in params.

The raw pass (an `EventSource`) and the stored pass (per-user day states,
boundary-day rows and raw rows only for what the states cannot answer)."""

from __future__ import annotations

from typing import Any

import pytest
from segops.dsl import EventSource, compile_segment, compile_segments, parse_definition, tenant_events

NOW = "{now:DateTime64(3, 'UTC')}"
FROM = f"""  FROM events
  WHERE tenant_id = {{tenant_id:UInt64}} AND occurred_at <= {NOW}
  GROUP BY user_id
  SETTINGS short_circuit_function_evaluation = 'force_enable'
)"""


RAW = EventSource("events", "tenant_id = {tenant_id:UInt64}")


def stored_rows(days: str, partials: str = "", zeros: str = "") -> str:
    """The state and boundary branches of a stored pass whose boundary days are `days`."""
    return f"""    SELECT user_id, event_type, toDateTime64(day, 3, 'UTC') AS window_at, last_at AS occurred_at, events, totals, total_sum, total_min, total_max, identity{partials}
      FROM user_day_states WHERE tenant_id = {{tenant_id:UInt64}} AND day < toDate32({NOW}) AND day NOT IN ({days})
    UNION ALL
    SELECT user_id, event_type, occurred_at, occurred_at, toUInt64(1), toUInt64(total IS NOT NULL), ifNull(total, 0), ifNull(total, inf), ifNull(total, -inf), (occurred_at, received_at, identity){zeros}
      FROM event_days WHERE tenant_id = {{tenant_id:UInt64}} AND day IN ({days}) AND occurred_at <= {NOW}"""  # noqa: E501


STORED_END = """  )
  GROUP BY user_id
  SETTINGS short_circuit_function_evaluation = 'force_enable'
)"""
NOW_DAY = f"toDate32({NOW})"


def assert_compiles(definition: dict[str, Any], sql: str, params: dict[str, Any], stored: bool = False) -> None:
    compiled = compile_segment(parse_definition(definition), None if stored else RAW)
    assert compiled.sql == sql, compiled.sql
    assert compiled.params == params


def one(condition: dict[str, Any]) -> dict[str, Any]:
    return {"logic": "AND", "conditions": [condition]}


def test_event_count() -> None:
    assert_compiles(
        one({"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}),
        f"""SELECT user_id FROM (
  SELECT user_id,
    countIf(event_type = {{p0:String}}) AS `a0`
{FROM}
WHERE (`a0` >= {{p1:UInt64}})""",
        {"p0": "page_viewed", "p1": 1},
    )


def test_event_count_with_window_and_where() -> None:
    assert_compiles(
        one(
            {
                "type": "event_count",
                "event_type": "order_placed",
                "operator": "lt",
                "value": 3,
                "window_days": 7,
                "where": [{"property": "shipping.country", "operator": "eq", "value": "DE"}],
            }
        ),
        f"""SELECT user_id FROM (
  SELECT user_id,
    countIf(event_type = {{p0:String}} AND occurred_at > subtractMilliseconds({NOW}, {{p1:Int64}}) AND (JSONExtractString(payload, {{p2:String}}, {{p3:String}}) = {{p4:String}})) AS `a0`
{FROM}
WHERE (`a0` < {{p5:UInt64}})""",  # noqa: E501
        {"p0": "order_placed", "p1": 604_800_000, "p2": "shipping", "p3": "country", "p4": "DE", "p5": 3},
    )


@pytest.mark.parametrize("value", ["", "5", "-x", "0xff", "true", "false", '{"k":1}', "[1]"])
def test_a_string_json_text_could_spell_keeps_its_type_check(value: str) -> None:
    # JSONExtractString gives "" for a missing value, and "" or the JSON text for a non-string one
    # (`5`, `true`, `{"k":1}`, by server version): only a JSON string may then match these values
    for operator, operand in (("eq", value), ("in", ["pro", value])):
        filters = [{"property": "plan", "operator": operator, "value": operand}]
        compiled = compile_segment(
            parse_definition(
                one({"type": "event_count", "event_type": "a", "operator": "gte", "value": 1, "where": filters})
            ),
            tenant_events(),
        )
        assert "JSONType(payload, {p1:String}) = 'String' AND JSONExtractString(payload, {p1:String})" in compiled.sql


def test_monetary_avg_guards_empty() -> None:
    assert_compiles(
        one(
            {
                "type": "monetary",
                "event_type": "order_placed",
                "property": "total",
                "metric": "avg",
                "operator": "gte",
                "value": 50.5,
            }
        ),
        f"""SELECT user_id FROM (
  SELECT user_id,
    countIf(event_type = {{p1:String}} AND JSONType(payload, {{p0:String}}) IN ('Int64', 'UInt64', 'Double')) AS `a0`,
    sumIf(if(event_type = {{p1:String}} AND JSONType(payload, {{p0:String}}) IN ('Int64', 'UInt64', 'Double'), JSONExtractFloat(payload, {{p0:String}}), 0), event_type = {{p1:String}} AND JSONType(payload, {{p0:String}}) IN ('Int64', 'UInt64', 'Double')) AS `a1`
{FROM}
WHERE ((`a0` > 0 AND `a1` / `a0` >= {{p2:Float64}}))""",  # noqa: E501
        {"p0": "total", "p1": "order_placed", "p2": 50.5},
    )


def test_recency_never_did_it_is_infinitely_long_ago() -> None:
    assert_compiles(
        one({"type": "recency", "event_type": "page_viewed", "operator": "gt", "window_days": 30}),
        f"""SELECT user_id FROM (
  SELECT user_id,
    maxIf(occurred_at, event_type = {{p0:String}}) AS `a0`,
    countIf(event_type = {{p0:String}}) AS `a1`
{FROM}
WHERE ((`a1` = 0 OR dateDiff('millisecond', `a0`, {NOW}) > {{p1:Int64}}))""",
        {"p0": "page_viewed", "p1": 2_592_000_000},
    )


def test_user_property_in_mixed_types_groups_by_json_type() -> None:
    assert_compiles(
        one({"type": "user_property", "property": "plan", "operator": "not_in", "value": ["pro", 2, True]}),
        f"""SELECT user_id FROM (
  SELECT user_id,
    argMaxIf(payload, (occurred_at, received_at), event_type = {{p0:String}}) AS `a0`
{FROM}
WHERE (NOT ((JSONExtractString(`a0`, {{p1:String}}) IN {{p2:Array(String)}}) OR (JSONType(`a0`, {{p1:String}}) = 'Bool' AND JSONExtractBool(`a0`, {{p1:String}}) IN {{p3:Array(UInt8)}}) OR (JSONType(`a0`, {{p1:String}}) IN ('Int64', 'UInt64', 'Double') AND (JSONExtractFloat(`a0`, {{p1:String}}) + 0) IN {{p4:Array(Float64)}})))""",  # noqa: E501
        {"p0": "context_identified", "p1": "plan", "p2": ["pro"], "p3": [1], "p4": [2.0]},
    )


def test_nested_groups_share_aggregates() -> None:
    count = {"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}
    assert_compiles(
        {
            "logic": "OR",
            "conditions": [count, {"logic": "AND", "conditions": [count, {**count, "operator": "lt", "value": 5}]}],
        },
        f"""SELECT user_id FROM (
  SELECT user_id,
    countIf(event_type = {{p0:String}}) AS `a0`
{FROM}
WHERE (`a0` >= {{p1:UInt64}} OR (`a0` >= {{p1:UInt64}} AND `a0` < {{p2:UInt64}}))""",
        {"p0": "a", "p1": 1, "p2": 5},
    )


def test_many_segments_one_pass_one_column_each() -> None:
    first = parse_definition(one({"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}))
    second = parse_definition(one({"type": "event_count", "event_type": "a", "operator": "gte", "value": 3}))
    compiled = compile_segments([(7, first), (12, second)], RAW)
    assert compiled.columns == {7: "s_7", 12: "s_12"}
    assert compiled.sql == (
        "SELECT user_id,\n  (`a0` >= {p1:UInt64}) AS `s_7`,\n  (`a0` >= {p2:UInt64}) AS `s_12`\nFROM (\n"
        "  SELECT user_id,\n    countIf(event_type = {p0:String}) AS `a0`\n" + FROM + "\nWHERE `s_7` OR `s_12`"
    )
    assert compiled.params == {"p0": "a", "p1": 1, "p2": 3}
    # AND for a caller that keeps only the true columns, the same pass without the members filter
    every_user = compile_segments([(7, first), (12, second)], RAW, members_only=False)
    assert every_user.sql == compiled.sql.removesuffix("\nWHERE `s_7` OR `s_12`")
    assert (every_user.columns, every_user.params) == (compiled.columns, compiled.params)


def test_stored_event_count_reads_states_and_now_day_rows() -> None:
    assert_compiles(
        one({"type": "event_count", "event_type": "page_viewed", "operator": "gte", "value": 1}),
        f"""SELECT user_id FROM (
  SELECT user_id,
    sumIf(events, event_type = {{p0:String}}) AS `a0`
  FROM (
{stored_rows(NOW_DAY)}
{STORED_END}
WHERE (`a0` >= {{p1:UInt64}})""",
        {"p0": "page_viewed", "p1": 1},
        stored=True,
    )


def test_stored_windowed_minimum_takes_whole_days_from_states_and_boundary_days_exactly() -> None:
    start = f"subtractMilliseconds({NOW}, {{p1:Int64}})"
    match = f"event_type = {{p0:String}} AND window_at > {start}"
    assert_compiles(
        one(
            {
                "type": "monetary",
                "event_type": "order_placed",
                "property": "total",
                "metric": "min",
                "operator": "gte",
                "value": 50.5,
                "window_days": 7,
            }
        ),
        f"""SELECT user_id FROM (
  SELECT user_id,
    sumIf(totals, {match}) AS `a0`,
    minIf(total_min, {match}) AS `a1`
  FROM (
{stored_rows(f"{NOW_DAY}, toDate32({start})")}
{STORED_END}
WHERE ((`a0` > 0 AND `a1` >= {{p2:Float64}}))""",
        {"p0": "order_placed", "p1": 604_800_000, "p2": 50.5},
        stored=True,
    )


def test_stored_where_filter_reads_raw_events_of_its_type_only_aggregated_per_user() -> None:
    nothing = "toDateTime64(0, 3, 'UTC')"
    assert_compiles(
        one(
            {
                "type": "event_count",
                "event_type": "order_placed",
                "operator": "gte",
                "value": 1,
                "where": [{"property": "coupon", "operator": "exists"}],
            }
        ),
        f"""SELECT user_id FROM (
  SELECT user_id,
    sum(`r0`) AS `a0`
  FROM (
{stored_rows(NOW_DAY, ", 0 AS `r0`", ", 0")}
    UNION ALL
    SELECT user_id, '', {nothing}, {nothing}, toUInt64(0), toUInt64(0), 0, inf, -inf, ({nothing}, {nothing}, ''), countIf(event_type = {{p0:String}} AND JSONType(payload, {{p1:String}}) != 'Null')
      FROM events WHERE tenant_id = {{tenant_id:UInt64}} AND occurred_at <= {NOW} AND event_type IN {{p3:Array(String)}}
        AND ((event_type = {{p0:String}} AND JSONType(payload, {{p1:String}}) != 'Null'))
      GROUP BY user_id
{STORED_END}
WHERE (`a0` >= {{p2:UInt64}})""",  # noqa: E501
        {"p0": "order_placed", "p1": "coupon", "p2": 1, "p3": ["order_placed"]},
        stored=True,
    )


def test_stored_user_property_is_the_latest_identity_tuple() -> None:
    compiled = compile_segment(
        parse_definition(one({"type": "user_property", "property": "plan", "operator": "exists"}))
    )
    assert "tupleElement(maxIf(identity, event_type = {p0:String}), 3) AS `a0`" in compiled.sql
    assert compiled.params["p0"] == "context_identified"


def test_restricted_source_binds_its_own_parameters() -> None:
    definition = parse_definition(one({"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}))
    compiled = compile_segment(definition, tenant_events(["u1", "u2"]))
    for table in ("user_day_states", "event_days"):
        assert (
            f"FROM {table} WHERE tenant_id = {{tenant_id:UInt64}} AND user_id IN {{src_user_ids:Array(String)}} AND"
            in compiled.sql
        )
    assert compiled.params["src_user_ids"] == ["u1", "u2"]


def test_segment_ids_must_be_distinct() -> None:
    definition = parse_definition(one({"type": "event_count", "event_type": "a", "operator": "gte", "value": 1}))
    with pytest.raises(ValueError, match="twice"):
        compile_segments([(1, definition), (1, definition)])


def test_stored_pass_reads_each_table_once_and_shares_aggregates_across_thresholds() -> None:
    spend = {"type": "monetary", "event_type": "order", "property": "total", "metric": "sum", "window_days": 30}
    segments = [
        (i, parse_definition(one({**spend, "operator": "gte", "value": value})))
        for i, value in enumerate((10, 100, 1000))
    ]
    compiled = compile_segments(segments)
    assert compiled.sql.count("sumIf(total_sum,") == 1
    assert compiled.sql.count("FROM user_day_states") == compiled.sql.count("FROM event_days") == 1
    assert "FROM events" not in compiled.sql
