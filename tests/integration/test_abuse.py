"""Abuse limits (issue #17 row 3): password hashing capped to the function's memory, login and signup
throttled per account and per client address, and the `api` manifest entry consistent with both."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from segops.config import Settings
from segops.localstack import LocalStack
from segops.manifest import load_manifest
from werkzeug.test import TestResponse

from tests.support.api import Api, assert_error

PASSWORD = "correct horse battery"


def limited(settings: Settings, **update: object) -> Iterator[Api]:
    local = LocalStack(settings.model_copy(update=update))
    try:
        yield Api(local)
    finally:
        local.stop()


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    yield from limited(
        settings, login_failures_per_account=3, logins_per_address=8, signups_per_email=2, signups_per_address=4
    )


def assert_throttled(response: TestResponse) -> None:
    error = assert_error(response, 429, "rate_limited")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3600 and error["details"]["retry_after"] == retry_after


def login(api: Api, email: str, password: str, address: str = "203.0.113.7") -> TestResponse:
    return api.post("/api/auth/token/", {"email": email, "password": password}, environ_base={"REMOTE_ADDR": address})


def test_failed_logins_lock_the_account_but_not_its_successes(api: Api) -> None:
    victim = api.signup()
    # a successful login does not count against the account
    assert login(api, victim.email, PASSWORD).status_code == 200
    # GIVEN three failures against one account, from changing addresses
    for n in range(3):
        assert_error(login(api, victim.email, "wrong guess", f"198.51.100.{n}"), 401, "unauthorized")
    # THEN the next attempt is refused before any password check, even with the right password
    assert_throttled(login(api, victim.email, PASSWORD, "198.51.100.9"))
    # AND other accounts are unaffected
    assert login(api, api.signup().email, PASSWORD).status_code == 200


def test_logins_are_throttled_per_client_address(api: Api) -> None:
    accounts = [api.signup() for _ in range(3)]
    for n in range(8):
        assert login(api, accounts[n % 3].email, PASSWORD, "192.0.2.1").status_code == 200
    assert_throttled(login(api, accounts[0].email, PASSWORD, "192.0.2.1"))
    assert login(api, accounts[0].email, PASSWORD, "192.0.2.2").status_code == 200


def test_wrong_passwords_at_verification_are_throttled_per_client_address(api: Api) -> None:
    # GIVEN a pending signup (its link mailed)
    email = "pending@example.com"
    assert (
        api.post("/api/auth/signup/", {"email": email, "password": PASSWORD, "tenant_slug": "pending-co"}).status_code
        == 202
    )
    token = api.mailed_token(email, "/verify-email")

    def verify(password: str, address: str = "192.0.2.50") -> TestResponse:
        body = {"token": token, "password": password}
        return api.post("/api/auth/verify-email/", body, environ_base={"REMOTE_ADDR": address})

    # WHEN one address guesses the password (links to unknown tokens cost nothing: they are 404s)
    for _ in range(10):
        assert_error(api.post("/api/auth/verify-email/", {"token": "made-up", "password": "x"}), 404)
    for _ in range(8):  # the address's login limit in this stack
        assert_error(verify("wrong guess"), 401, "unauthorized")
    # THEN the login limit of that address stops it, the right password included
    assert_throttled(verify("wrong guess"))
    assert_throttled(verify(PASSWORD))
    # AND the person, from elsewhere, still finishes their signup with the link
    assert verify(PASSWORD, "192.0.2.51").status_code == 201


@pytest.fixture
def proxied(settings: Settings) -> Iterator[Api]:
    yield from limited(settings, logins_per_address=2, trusted_proxy_hops=2)


def test_client_address_is_taken_from_the_trusted_proxy_entry(proxied: Api) -> None:
    account = proxied.signup()

    def attempt(forwarded: str) -> TestResponse:
        body = {"email": account.email, "password": PASSWORD}
        return proxied.post("/api/auth/token/", body, headers={"X-Forwarded-For": forwarded})

    # the client forges the left part of the header; the load balancer's entries are the last two
    for forged in ("1.1.1.1", "2.2.2.2"):
        assert attempt(f"{forged}, 203.0.113.50, 130.211.0.1").status_code == 200
    assert_throttled(attempt("3.3.3.3, 203.0.113.50, 130.211.0.1"))
    assert attempt("203.0.113.51, 130.211.0.1").status_code == 200


def test_signups_are_throttled_per_email_and_per_address(api: Api) -> None:
    def signup(email: str, slug: str, address: str) -> TestResponse:
        body = {"email": email, "password": PASSWORD, "tenant_slug": slug}
        return api.post("/api/auth/signup/", body, environ_base={"REMOTE_ADDR": address})

    # per email, whatever the address
    assert signup("same@example.com", "s-1", "192.0.2.10").status_code == 202
    assert signup("same@example.com", "s-2", "192.0.2.11").status_code == 202
    assert_throttled(signup("same@example.com", "s-3", "192.0.2.12"))
    # per address, whatever the email
    for n in range(4):
        assert signup(f"n{n}@example.com", f"a-{n}", "192.0.2.20").status_code == 202
    assert_throttled(signup("n9@example.com", "a-9", "192.0.2.20"))
    assert [mail["to"] for mail in api.mailbox()].count("same@example.com") == 2


@pytest.fixture
def one_slot(settings: Settings) -> Iterator[Api]:
    """GIVEN one hashing slot (the function's memory minus the reserve holds one hash), no waiting,
    and hashes slow enough (~0.5 s) that simultaneous logins overlap."""
    yield from limited(
        settings,
        function_memory_mb=128,
        memory_reserve_mb=127,
        password_hash_memory_kib=1024,
        password_hash_time_cost=250,
        password_hash_wait_seconds=0.0,
    )


def test_password_hashing_waits_for_a_slot_then_refuses(one_slot: Api) -> None:
    assert one_slot.stack.settings.password_hash_slots == 1
    account = one_slot.signup()
    # WHEN four logins arrive at once
    start = threading.Barrier(4)
    responses: list[TestResponse] = []
    lock = threading.Lock()

    def attempt() -> None:
        client = Api(one_slot.stack)
        start.wait()
        response = client.post("/api/auth/token/", {"email": account.email, "password": PASSWORD})
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=attempt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN one hashed and the others, finding the slot taken, were refused with a 429 (never run side by side)
    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    for refusal in (r for r in responses if r.status_code == 429):
        assert_throttled(refusal)


def test_api_manifest_memory_and_concurrency_fit_the_password_cap() -> None:
    [api_fn] = [f for f in load_manifest().functions if f.name == "api"]
    defaults = Settings(function_memory_mb=api_fn.memory_mb)
    hash_mb = defaults.password_hash_memory_kib / 1024
    slots = defaults.password_hash_slots
    # the hashes that may run at once fit next to the reserve in the function's memory
    assert defaults.memory_reserve_mb + slots * hash_mb <= api_fn.memory_mb
    assert slots >= 2, "one slot would serialise every login of an instance"
    # every slot can be used (requests beyond the slots wait, then get a 429 before the function times out)
    assert slots <= api_fn.concurrency
    assert defaults.password_hash_wait_seconds < api_fn.timeout_seconds
    # and the address limit lets a full instance's worth of logins through before throttling
    assert defaults.logins_per_address >= slots
