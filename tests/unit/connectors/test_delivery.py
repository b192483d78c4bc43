"""The shared HTTP sync engine against a scripted local server: which failures are retried, how long
it waits, and that secrets never reach an error summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import formatdate
from http import HTTPStatus

import pytest
from segops.connectors.delivery import HttpSync, PlatformError, RetryPolicy, Tally, chunks

from tests.support.log_secrets import watch
from tests.support.platforms import CONTRACT_EGRESS, FakePlatform, Recorded, Reply

SECRET = "sk_platform_secret_000"
watch(SECRET)


class Scripted(FakePlatform):
    """Answers with the next scripted (status, headers, body); 200 once the script is used up."""

    def __init__(self) -> None:
        super().__init__(SECRET)
        self.script: list[Reply] = []

    def route(self, request: Recorded) -> Reply:
        return self.script.pop(0) if self.script else (200, {}, {"ok": True})


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted()
    scripted.start()
    yield scripted
    scripted.stop()


def _client(waits: list[float], attempts: int = 4, timeout: float = 10.0) -> HttpSync:
    # A generous timeout unless the test is about timeouts: a loaded CI machine must not turn an
    # answered request into a timed-out one (and so a retry).
    policy = RetryPolicy(max_attempts=attempts, backoff_base_seconds=0.01, timeout_seconds=timeout, max_wait_seconds=60)
    return HttpSync(policy, CONTRACT_EGRESS, sleep=waits.append)


def test_429_waits_for_retry_after_seconds_or_date_or_reset_header(server: Scripted) -> None:
    waits: list[float] = []
    server.script = [
        (429, {"Retry-After": "7"}, None),
        (429, {"Retry-After": formatdate(time.time() + 30, usegmt=True)}, None),
        (429, {"X-RateLimit-Reset": str(int(time.time()) + 12)}, None),
    ]
    response = _client(waits).call("POST", f"{server.url}/x", {}, {"a": 1})
    assert response.status_code == 200
    assert waits[0] == 7
    assert 25 <= waits[1] <= 30
    assert 9 <= waits[2] <= 12


def test_5xx_and_timeouts_back_off_then_give_up_as_retryable(server: Scripted) -> None:
    waits: list[float] = []
    server.inject("timeout", "/x", delay=1.5)  # the server still answers the first request, too late
    server.script = [(200, {}, None), (503, {}, None), (500, {}, None), (502, {}, None)]
    with pytest.raises(PlatformError) as raised:
        _client(waits, timeout=0.3).call("GET", f"{server.url}/x", {})
    assert raised.value.retryable and "502" in raised.value.summary and "gave up after 4" in raised.value.summary
    assert len(waits) == 3 and all(0 < w <= 0.04 for w in waits)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(server: Scripted, status: int) -> None:
    waits: list[float] = []
    server.script = [(status, {}, {"message": f"bad key {SECRET}"})]
    with pytest.raises(PlatformError) as raised:
        _client(waits).call("POST", f"{server.url}/x", {"Authorization": f"Bearer {SECRET}"}, {})
    assert waits == [] and len(server.requests) == 1
    assert raised.value.status == status and not raised.value.retryable
    # AND the summary is the status and its standard phrase: nothing of the body (which echoed the key)
    assert raised.value.summary == f"POST /x → {status} {HTTPStatus(status).phrase}"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_never_followed(server: Scripted, status: int) -> None:
    # GIVEN a platform answering with a redirect to the cloud metadata server
    waits: list[float] = []
    server.script = [(status, {"Location": "http://169.254.169.254/computeMetadata/v1/"}, None)]
    # THEN the call fails for good without a second request
    with pytest.raises(PlatformError) as raised:
        _client(waits).call("GET", f"{server.url}/x", {})
    assert raised.value.status == status and not raised.value.retryable and len(server.requests) == 1


def test_chunks_and_tally() -> None:
    assert [len(c) for c in chunks(range(2501), 1000)] == [1000, 1000, 501]
    tally = Tally()
    tally.skip("no email user property", 2)
    tally.fail("add", ["u1", "u2"], PlatformError("POST /x → 500", 500))
    assert (tally.skipped, tally.failed, tally.errors) == (2, 2, ["POST /x → 500"])
    assert tally.dead_letters == [{"action": "add", "user_ids": ["u1", "u2"], "error": "POST /x → 500"}]
