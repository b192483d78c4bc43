"""A connector's identity lookup binds its batch of user ids as one parameter: on a ClickHouse server,
which refuses a request field over 128 KiB, a batch is cut by that parameter's size as well as by count."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.binding import format_bind_value
from segops.bus.local import LocalBus
from segops.config import Settings
from segops.connectors.delivery import Tally
from segops.connectors.identities import LOOKUP_BATCH, LOOKUP_BATCH_BYTES, IdentityResolver
from segops.runtime import Runtime, build_runtime
from segops.warehouse.migrations import migrate
from segops.warehouse.params import array_parts

from tests.support.clickhouse_http import HTTP_MAX_FIELD_VALUE_SIZE, ChdbHttpServer
from tests.support.dsl_reference import Event
from tests.support.events import fresh_tenant, insert_events


def _parameter(user_ids: list[str]) -> str:
    """The `Array(String)` parameter text a batch becomes, as clickhouse-connect writes it."""
    return str(format_bind_value(user_ids))


def test_batches_keep_every_id_in_order_within_both_bounds() -> None:
    # GIVEN short ids, then ids of 256 characters full of characters the parameter escapes
    ids = [f"u{n}" for n in range(2_500)] + [f"{n:04d}" + "\\'" * 126 for n in range(1_000)]
    batches = list(array_parts(ids, LOOKUP_BATCH_BYTES, LOOKUP_BATCH))
    assert [u for batch in batches for u in batch] == ids
    assert all(len(batch) <= LOOKUP_BATCH for batch in batches)
    assert all(len(_parameter(batch).encode()) <= LOOKUP_BATCH_BYTES + 2 for batch in batches)
    assert [len(batch) for batch in batches[:2]] == [LOOKUP_BATCH] * 2  # short ids: the count bounds


@pytest.fixture
def server_runtime(settings: Settings, clickhouse_http: ChdbHttpServer) -> Iterator[Runtime]:
    settings.warehouse = "clickhouse"
    settings.clickhouse_url = clickhouse_http.url
    runtime = build_runtime(settings, bus=LocalBus())
    migrate(runtime.warehouse)
    try:
        yield runtime
    finally:
        runtime.warehouse.command(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
        runtime.warehouse.close()


def test_long_user_ids_resolve_on_a_clickhouse_server(server_runtime: Runtime) -> None:
    # GIVEN 1,000 users with 200-character ids, each identified with an email
    tenant = fresh_tenant()
    now = datetime.now(UTC)
    ids = [f"{n:04d}-" + "x" * 195 for n in range(1_000)]
    assert len(_parameter(ids).encode()) > HTTP_MAX_FIELD_VALUE_SIZE  # one batch would be refused
    insert_events(
        server_runtime.warehouse,
        tenant,
        [Event(u, "context_identified", now, now, {"email": f"{u[:4]}@example.com"}) for u in ids],
    )
    # WHEN a connector keyed by email resolves them
    tally = Tally()
    recipients = list(IdentityResolver(server_runtime, tenant, "email").resolve(ids, tally))
    # THEN every user is resolved, none skipped
    assert {(r.user_id, r.identifier) for r in recipients} == {(u, f"{u[:4]}@example.com") for u in ids}
    assert tally.skipped == 0
