"""The writer's blocks: token, rows and partition groups, independent of any warehouse."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from segops.ingestion.writer import block_token, event_row, event_rows, lookup_since, partition_groups
from segops.ingestion.writer_rows import writer_events
from segops.messages import TrackedEvent

START = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _events(count: int, days_apart: int = 0) -> list[TrackedEvent]:
    return [
        TrackedEvent(
            tenant_id=1,
            event_id=uuid.UUID(int=n * 7919 + 1),
            message_id="m-1" if n % 2 else None,
            user_id=f"u{n}",
            event_type="order_placed",
            occurred_at=START + timedelta(days=days_apart * n),
            received_at=START,
            payload={"n": n, "quote": 'a"b'},
        )
        for n in range(count)
    ]


def test_block_token_is_the_one_blocks_already_stored_carry() -> None:
    # A redelivery after an upgrade must produce the token its earlier INSERT carried, or ClickHouse
    # would not recognise the block: the value is pinned, and the order of the ids matters.
    events = writer_events(_events(3))
    assert block_token(events) == "ev-3-4dd32c7d137220fccc0f336cd9648f16"
    assert block_token(events[::-1]) != block_token(events)


def test_rows_follow_the_column_order_with_payloads_as_json_text() -> None:
    events = _events(2)
    rows = event_rows(events)
    assert rows[0] == (1, str(events[0].event_id), "", "u0", "order_placed", START, START, '{"n":0,"quote":"a\\"b"}')
    assert rows[1][2] == "m-1"
    assert [event_row(e) for e in events] == rows


def test_live_traffic_is_one_group_and_a_backfill_is_split_by_months_in_order() -> None:
    live = writer_events(_events(5))
    assert partition_groups(live, 2) == [live]
    backfill = writer_events(_events(5, days_apart=31))  # five consecutive months
    groups = partition_groups(list(reversed(backfill)), 2)
    assert [[e.occurred_at.month for e in group] for group in groups] == [[1, 2], [3, 4], [5]]


def test_the_id_lookup_starts_the_horizon_before_the_oldest_receive_day() -> None:
    # The oldest event of the flush decides, by its UTC day: 20:30 at UTC-5 on March 2 is March 3 in UTC.
    evening = datetime(2026, 3, 2, 20, 30, tzinfo=timezone(timedelta(hours=-5)))
    received = [datetime(2026, 3, 10, 0, 30, tzinfo=UTC), evening, datetime(2026, 3, 5, tzinfo=UTC)]
    assert lookup_since(received, 3) == date(2026, 2, 28)
    # Naive times are UTC.
    assert lookup_since([datetime(2026, 1, 1, 0, 0)], 7) == date(2025, 12, 25)
