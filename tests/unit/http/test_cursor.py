"""The list-cursor codec: every paginated endpoint's position round-trips; anything else is a 400."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson
import pytest
from segops.connectors.api import ConnectorsCursor, SyncsCursor
from segops.errors import ValidationFailed
from segops.http.cursor import Cursor, key_of
from segops.segments.api import MembersCursor, SegmentsCursor

POSITIONS: list[Cursor] = [
    SegmentsCursor(after=1),
    SegmentsCursor(after=2**63 - 1),
    MembersCursor(segment_id=3, snapshot=40_000_017, after="user-00042"),
    MembersCursor(segment_id=3, snapshot=1, after='ü ✓ 🙂 "quoted" \\ \'; DROP TABLE members; --'),
    ConnectorsCursor(after=12),
    SyncsCursor(connector_id=5, before=99),
]


KEY = key_of("the deployment's token-signing secret, for these tests")


def _signed(body: bytes, key: bytes = KEY) -> str:
    """A cursor built by hand around `body` with a valid tag (what only the server could make)."""
    tag = hmac.new(key, body, hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(tag + body).decode().rstrip("=")


def _raw(document: object) -> str:
    """A cursor built by hand, the way a client must not: even correctly tagged, only the codec's own
    encoding of a valid position of this list is taken."""
    return _signed(orjson.dumps(document))


def _refused(cls: type[Cursor], text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        cls.decode(text, KEY)
    assert caught.value.status == 400
    assert caught.value.details["errors"][0]["pointer"] == "/query/cursor"


@pytest.mark.parametrize("position", POSITIONS, ids=lambda p: type(p).__name__)
def test_round_trip_is_url_safe_and_opaque(position: Cursor) -> None:
    text = position.encode(KEY)
    assert text.isascii() and "=" not in text and "+" not in text and "/" not in text
    assert type(position).decode(text, KEY) == position


@pytest.mark.parametrize(
    "text",
    [
        "",
        "%%%",
        "bm9wZQ",  # base64 of "nope"
        "a",  # impossible base64 length
        _raw({"list": "segments", "after": 5}) + "==",  # padded: not what the codec writes
        _raw({"list": "segments", "after": 5}) + ".",
        _raw([5]),
        _raw(5),
        _raw({"after": 5}),  # no list
        _raw({"list": "connectors", "after": 5}),  # foreign: another list's cursor
        _raw({"list": "segments", "after": -1}),
        _raw({"list": "segments", "after": 0}),
        _raw({"list": "segments", "after": 2**63}),  # past the 64-bit ids
        _raw({"list": "segments", "after": "5"}),
        _raw({"list": "segments", "after": True}),
        _raw({"list": "segments", "after": 5.0}),
        _raw({"list": "segments", "after": None}),
        _raw({"list": "segments", "after": 5, "tenant": 2}),  # extra field
        _raw({"after": 5, "list": "segments"}),  # same fields, not the codec's encoding
        _signed(b'{"list": "segments", "after": 5}'),
        _signed(b'{"list":"segments","after":99999999999999999999999}'),
        # the codec's own encoding, but not tagged by this deployment's key: edited or made elsewhere
        base64.urlsafe_b64encode(b'{"list":"segments","after":5}').decode().rstrip("="),
        _signed(b'{"list":"segments","after":5}', key_of("another deployment's secret")),
        _signed(b'{"list":"segments","after":5}')[:-1] + "A",
    ],
)
def test_malformed_edited_or_foreign_cursors_are_400(text: str) -> None:
    _refused(SegmentsCursor, text)


def test_a_cursor_edited_to_another_position_is_refused() -> None:
    # GIVEN a members cursor the server wrote, and the same position with its snapshot and segment
    # edited (its JSON is no secret: a client can read and rewrite it)
    text = MembersCursor(segment_id=3, snapshot=1, after="user-1").encode(KEY)
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    for edited in (b'"snapshot":1', b'"segment_id":3'):
        body = raw[12:].replace(edited, edited[:-1] + b"9")
        forged = base64.urlsafe_b64encode(raw[:12] + body).decode().rstrip("=")
        # THEN its tag no longer matches: a 400, never another snapshot's or segment's page
        _refused(MembersCursor, forged)
