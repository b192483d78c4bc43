"""`segops.clock`: the one source of "now", and freezing it in tests."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from segops import clock
from segops.auth import tokens
from segops.errors import Unauthorized
from segops.segments.models import Segment

PACKAGE = Path(clock.__file__).resolve().parent
AT = datetime(2026, 4, 25, 14, 32, 7, 123456, tzinfo=UTC)


def test_now_is_aware_utc_and_moves() -> None:
    first = clock.now()
    assert first.tzinfo is UTC
    assert abs(first - datetime.now(UTC)) < timedelta(seconds=5)


def test_frozen_holds_in_other_threads_and_nests() -> None:
    seen: list[datetime] = []
    # GIVEN a frozen clock
    with clock.frozen(AT) as at:
        assert at == AT
        # WHEN another thread (a bus worker, a server thread) asks for now
        worker = threading.Thread(target=lambda: seen.append(clock.now()))
        worker.start()
        worker.join()
        # THEN it sees the frozen instant too; a nested freeze wins until it ends
        with clock.frozen(AT + timedelta(hours=1)):
            assert clock.now() == AT + timedelta(hours=1)
        assert clock.now() == AT
    assert seen == [AT]
    # AND the real clock is back after the block
    assert clock.now() != AT


def test_frozen_converts_to_utc_and_rejects_naive() -> None:
    with clock.frozen(AT.astimezone(timezone(timedelta(hours=2)))):
        assert clock.now().tzinfo is UTC
        assert clock.now() == AT
    with pytest.raises(ValueError, match="aware"), clock.frozen(AT.replace(tzinfo=None)):
        pass


def test_now_millis_drops_sub_millisecond_digits() -> None:
    with clock.frozen(AT):
        assert clock.now_millis() == AT.replace(microsecond=123000)


def test_model_defaults_read_the_frozen_clock() -> None:
    with clock.frozen(AT):
        segment = Segment(id=1, tenant=1, name="n", created_by="u1")
    assert segment.created_at == segment.updated_at == AT


def test_token_expiry_follows_the_clock() -> None:
    # GIVEN an access token issued at AT for 15 minutes
    secret = "s" * 32
    with clock.frozen(AT):
        token = tokens.issue(secret, 7, "access", timedelta(minutes=15), tokens.new_id())
    # THEN it is valid until its expiry and expired from then on, without sleeping
    with clock.frozen(AT + timedelta(minutes=14, seconds=59)):
        assert tokens.verify(secret, token, "access").user_id == 7
    with clock.frozen(AT + timedelta(minutes=15)), pytest.raises(Unauthorized, match="expired"):
        tokens.verify(secret, token, "access")
    # AND a token issued after "now" is not accepted
    with clock.frozen(AT - timedelta(minutes=1)), pytest.raises(Unauthorized, match="invalid token"):
        tokens.verify(secret, token, "access")


def test_production_code_reads_now_only_through_the_clock() -> None:
    wall_clock = re.compile(r"datetime\.(?:now|utcnow|today)\(|\btime\.time\(\)|\bdate\.today\(")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != Path(clock.__file__).resolve()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if wall_clock.search(line)
    ]
    assert offenders == []
