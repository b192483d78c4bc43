"""One event-type rule: what ingestion accepts is exactly what a segment definition may reference."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from segops.dsl import parse_definition
from segops.errors import ValidationFailed
from segops.event_type import is_event_type
from segops.ingestion.events import Rejection, Stamp, validate_event, validate_events

NAMES = [
    ("page_viewed", True),
    ("a", True),
    ("order2_placed", True),
    ("a" * 128, True),
    ("a" * 129, False),
    ("", False),
    ("Page_viewed", False),
    ("2fa_enabled", False),
    ("_private", False),
    ("page-viewed", False),
    ("page viewed", False),
    ("page_viewed\n", False),
    ("page_viewed'; DROP TABLE events; --", False),
    ("pagé_viewed", False),
]


def _ingestion_accepts(event_type: str) -> bool:
    """Both ingestion paths: the model (single events) and the batch fast path."""
    stamp = Stamp(1, datetime(2026, 4, 25, tzinfo=UTC), "api")
    event = {"user_id": "u", "event_type": event_type}
    single = not isinstance(validate_event(event, stamp), Rejection)
    [batched] = validate_events([event], stamp)
    assert single is not isinstance(batched, Rejection)
    return single


def _dsl_accepts(event_type: str) -> bool:
    condition = {"type": "event_count", "event_type": event_type, "operator": "gte", "value": 1, "window_days": 7}
    try:
        parse_definition({"logic": "AND", "conditions": [condition]})
    except ValidationFailed:
        return False
    return True


@pytest.mark.parametrize(("event_type", "valid"), NAMES)
def test_ingestion_and_dsl_agree(event_type: str, valid: bool) -> None:
    assert is_event_type(event_type) is valid
    assert _ingestion_accepts(event_type) is valid
    assert _dsl_accepts(event_type) is valid
