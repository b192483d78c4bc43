from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import IO, Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.summary import QuerySummary

from segops.warehouse import statistics
from segops.warehouse.base import TENANT_SETTING, QueryResult
from segops.warehouse.identifiers import allowed_identifier, quote_identifier
from segops.warehouse.params import format_param

# Opening a connection to a reachable server takes milliseconds; one that does not answer in this
# long is down.
CONNECT_TIMEOUT_SECONDS = 5


def _bindable(value: Any) -> Any:
    """Values clickhouse-connect would render differently from `segops.warehouse.params` (and so from
    chDB): it drops the fraction of datetimes and renders booleans as `True`. Everything else it
    escapes exactly as ClickHouse's parameter format wants."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime):
        return format_param(value)
    if isinstance(value, list):
        return [_bindable(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_bindable(v) for v in value)
    return value


def _parameters(params: Mapping[str, Any] | None) -> dict[str, Any]:
    return {name: _bindable(value) for name, value in (params or {}).items()}


def _scope(tenant_id: int | None) -> dict[str, Any] | None:
    """The per-query custom setting the row policies read; the server must accept `SQL_` custom
    settings (`custom_settings_prefixes`, which ClickHouse's default config sets to `SQL_`)."""
    return None if tenant_id is None else {TENANT_SETTING: str(tenant_id)}


class ClickHouseWarehouse:
    """A ClickHouse server or ClickHouse Cloud over HTTP(S) via clickhouse-connect."""

    def __init__(
        self, url: str, user: str, password: str, database: str = "segops", send_receive_timeout: float = 30
    ) -> None:
        self.database = allowed_identifier(database)
        bootstrap = clickhouse_connect.get_client(
            dsn=url,
            username=user,
            password=password,
            autogenerate_session_id=False,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            send_receive_timeout=send_receive_timeout,
        )
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
        bootstrap.close()
        self._client: Client = clickhouse_connect.get_client(
            dsn=url,
            username=user,
            password=password,
            database=database,
            autogenerate_session_id=False,
            settings={"date_time_input_format": "best_effort"},
            # Aware datetimes for columns declared with a timezone, as chDB returns them.
            tz_mode="schema",
            # A server that stops answering must not hold a request past its function's timeout
            # (clickhouse-connect waits 300 s by default): the outage is a 503 well before.
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            send_receive_timeout=send_receive_timeout,
        )

    def query(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> QueryResult:
        result = self._client.query(sql, parameters=_parameters(params), settings=_scope(tenant_id))
        statistics.record_summary(result.summary)
        return QueryResult(columns=list(result.column_names), rows=[tuple(r) for r in result.result_rows])

    def command(self, sql: str, params: Mapping[str, Any] | None = None, tenant_id: int | None = None) -> None:
        answer = self._client.command(sql, parameters=_parameters(params), settings=_scope(tenant_id))
        if isinstance(answer, QuerySummary):
            statistics.record_summary(answer.summary)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        settings: Mapping[str, str | int] | None = None,
    ) -> None:
        if rows:
            # clickhouse-connect quotes the names itself; they still pass the allow-list first.
            self._client.insert(
                allowed_identifier(table),
                [list(r) for r in rows],
                column_names=[allowed_identifier(c) for c in columns],
                settings=dict(settings or {}),
            )

    def export(
        self, sql: str, params: Mapping[str, Any], fmt: str, sink: IO[bytes], tenant_id: int | None = None
    ) -> int:
        written = 0
        with self._client.raw_stream(
            sql, parameters=_parameters(params), fmt=allowed_identifier(fmt), settings=_scope(tenant_id)
        ) as stream:
            for chunk in stream:
                sink.write(chunk)
                written += len(chunk)
        return written

    def check(self) -> None:
        self._client.command("SELECT 1")

    def close(self) -> None:
        self._client.close()
