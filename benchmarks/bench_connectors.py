"""Connector pushes through the real sync engine (batching, ledger writes in chDB) to local contract
servers: users per second with each platform's batch size against one call per user, measured in the
same run. Loopback HTTP makes per-call overhead small, so real platforms widen these ratios."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from pydantic import HttpUrl
from segops.cache.memory import MemoryCache
from segops.config import Settings
from segops.connectors.braze import BrazeSubscriptionGroup
from segops.connectors.delivery import HttpSync, RetryPolicy, Tally
from segops.connectors.identities import IdentityResolver
from segops.connectors.klaviyo import KlaviyoList
from segops.connectors.ledger import ConnectorLedger
from segops.connectors.models import BrazeConfig, KlaviyoConfig
from segops.connectors.platform import BatchOutcome, Platform, push
from segops.runtime import Runtime, build_runtime
from segops.warehouse import chdb_backend
from segops.warehouse.migrations import migrate

from benchmarks.harness import Figure, best_of, ratio_figure
from tests.support.platforms import CONTRACT_EGRESS, FakeBraze, FakeKlaviyo

KEY = "bench-key"
POLICY = RetryPolicy(max_attempts=3, backoff_base_seconds=0.001, timeout_seconds=10)


class OnePerCall:
    """Baseline: the same platform client fed one identifier per call."""

    batch_size = 1

    def __init__(self, inner: Platform) -> None:
        self.inner = inner

    def add(self, identifiers: list[str]) -> BatchOutcome:
        return self.inner.add(identifiers)

    def remove(self, identifiers: list[str]) -> BatchOutcome:
        return self.inner.remove(identifiers)


def _users_per_second(runtime: Runtime, platform: Platform, users: list[str], connector_id: int) -> float:
    resolver = IdentityResolver(runtime, 1, None)
    ledger = ConnectorLedger(runtime, 1, connector_id)
    seconds = best_of(lambda: push(platform, "add", users, resolver, Tally(), ledger), repeat=1)
    return len(users) / seconds


def run(scale: float) -> list[Figure]:
    count = max(200, int(20_000 * scale))
    users = [f"user-{i:07d}" for i in range(count)]
    with tempfile.TemporaryDirectory(prefix="segops-bench-connectors-") as tmp:
        # chDB serves one data directory per process: join the one another benchmark opened, if any.
        opened = chdb_backend._shared.path if chdb_backend._shared is not None else None
        settings = Settings(
            environment="test",
            data_dir=Path(tmp),
            chdb_path=opened or Path(tmp) / "chdb",
            clickhouse_database=f"bench_connectors_{uuid.uuid4().hex[:8]}",
        )
        runtime = build_runtime(settings)
        migrate(runtime.warehouse)
        figures = []
        braze = FakeBraze(KEY).start()
        try:
            config = BrazeConfig(rest_endpoint=HttpUrl(braze.url), subscription_group_id="sg-vip")
            client = BrazeSubscriptionGroup(config, KEY, HttpSync(POLICY, CONTRACT_EGRESS))
            batched = _users_per_second(runtime, client, users, 1)
            baseline = _users_per_second(runtime, OnePerCall(client), users[: count // 4], 2)
            figures.append(
                ratio_figure("braze full sync (50 ids/call)", batched, "users/s", "one id per call", baseline)
            )
        finally:
            braze.stop()
        klaviyo = FakeKlaviyo(KEY).start()
        try:
            kconfig = KlaviyoConfig(list_id="Y6nRLr", base_url=HttpUrl(klaviyo.url), identifier="external_id")

            def klaviyo_client() -> KlaviyoList:
                return KlaviyoList(
                    kconfig, KEY, HttpSync(POLICY, CONTRACT_EGRESS), MemoryCache(), "bench", job_poll_seconds=0
                )

            batched = _users_per_second(runtime, klaviyo_client(), users, 3)
            fresh = [f"other-{i:07d}" for i in range(count // 4)]
            baseline = _users_per_second(runtime, OnePerCall(klaviyo_client()), fresh, 4)
            figures.append(
                ratio_figure(
                    "klaviyo first sync of new profiles (bulk job + 1000/list call)",
                    batched,
                    "users/s",
                    "per-profile upsert + one list call each",
                    baseline,
                )
            )
        finally:
            klaviyo.stop()
        runtime.warehouse.close()
    return figures
