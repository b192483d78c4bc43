"""A poison message: dead-lettered after the manifest's attempts, archived outside the warehouse, and
replayed exactly once (`segops.bus.dead_letters`, `python -m segops.ops replay`)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from segops import clock
from segops.bus.base import BusMessage, Topic
from segops.bus.dead_letters import REPLAY_ATTRIBUTE, REPLAY_LEASE, DeadLetter, last_attempt, letters, replay
from segops.config import Settings
from segops.localstack import LocalStack
from segops.messages import EventBatch, TrackedEvent
from segops.ops.__main__ import main as ops_main
from segops.runtime import set_runtime
from segops.store import keys

from tests.support.api import Account, Api
from tests.support.ingestion import FlakyWarehouse, record_topic, stored_events
from tests.support.schema import copy_migrated_schema
from tests.support.servers import wait_until


def _events(tenant_id: int, count: int) -> list[TrackedEvent]:
    now = datetime.now(UTC)
    return [
        TrackedEvent(
            tenant_id=tenant_id,
            event_id=uuid.uuid4(),
            message_id=None,
            user_id=f"u{i}",
            event_type="order_placed",
            occurred_at=now,
            received_at=now,
            payload={"total": i},
        )
        for i in range(count)
    ]


def _dead_letter_events(stack: LocalStack, tenant_id: int, count: int = 3) -> str:
    """Publish a batch while every insert into `events` fails, until it is dead-lettered; returns its id."""
    healthy = stack.runtime.warehouse
    stack.runtime.warehouse = FlakyWarehouse(healthy, "events", fail_on={-1})
    message_id = stack.bus.publish(
        Topic.EVENTS,
        EventBatch(events=_events(tenant_id, count)).model_dump_json().encode(),
        {"tenant_id": str(tenant_id)},
    )
    stack.bus.drain()
    stack.runtime.warehouse = healthy
    return message_id


def test_poison_message_is_archived_in_the_store_and_replayed_exactly_once(stack: LocalStack, account: Account) -> None:
    tenant = account.tenant_id
    started = clock.now()
    # GIVEN a batch the warehouse refused on every one of its 100 attempts
    message_id = _dead_letter_events(stack, tenant)
    assert stored_events(stack, tenant) == []
    # THEN it is archived under its tenant in the control-plane store, with why and when
    key = keys.dead_letter_key(tenant, "events", message_id)
    document = stack.runtime.store.get(key)
    assert document is not None
    letter = DeadLetter.model_validate(document.body)
    assert (letter.function, letter.delivery_attempt, letter.replayed_at) == ("event_writer", 100, None)
    assert letter.error.startswith("ConnectionError: injected failure")
    assert [k for k, _ in letters(stack.runtime.store, "events", started)] == [key]
    # WHEN the warehouse is back and the dead letters are replayed
    report = replay(stack.runtime.store, stack.bus, "events", started)
    stack.bus.drain()
    # THEN every event is stored once
    assert (report.replayed, report.already_replayed) == (1, 0)
    assert sorted(row["user_id"] for row in stored_events(stack, tenant)) == ["u0", "u1", "u2"]
    # AND replaying again publishes nothing
    again = replay(stack.runtime.store, stack.bus, "events", started)
    assert (again.replayed, again.already_replayed, stack.bus.drain()) == (0, 1, 0)
    assert len(stored_events(stack, tenant)) == 3
    replayed = letters(stack.runtime.store, "events", started)[0][1]
    assert replayed.replayed_at is not None and replayed.replayed_message_id is not None


def test_a_replay_that_died_after_publishing_is_taken_over_and_stores_once(stack: LocalStack, account: Account) -> None:
    tenant = account.tenant_id
    started = clock.now()
    message_id = _dead_letter_events(stack, tenant)
    key = keys.dead_letter_key(tenant, "events", message_id)
    # GIVEN a replay that claimed the record and published, then died before marking it replayed
    document = stack.runtime.store.get(key)
    assert document is not None
    letter = DeadLetter.model_validate(document.body)
    stack.runtime.store.put(key, letter.model_copy(update={"replay_started_at": clock.now()}).model_dump(mode="json"))
    stack.bus.publish(Topic.EVENTS, letter.body, letter.attributes)
    stack.bus.drain()
    # WHEN another replay runs while the claim is live: it leaves the record alone
    assert replay(stack.runtime.store, stack.bus, "events", started).in_progress == 1
    # and once the lease has passed it takes the record over and publishes it again
    with clock.frozen(clock.now() + REPLAY_LEASE + timedelta(seconds=1)):
        assert replay(stack.runtime.store, stack.bus, "events", started).replayed == 1
    stack.bus.drain()
    # THEN the events are stored once all the same (the writer's dedup by event id)
    assert len(stored_events(stack, tenant)) == 3


def test_two_operators_replaying_at_once_publish_each_message_once(stack: LocalStack, account: Account) -> None:
    tenant = account.tenant_id
    started = clock.now()
    for _ in range(3):
        _dead_letter_events(stack, tenant, count=1)
    published = record_topic(stack, Topic.EVENTS)
    # WHEN four replays run at the same instant
    barrier = threading.Barrier(4)
    reports = []

    def run() -> None:
        barrier.wait()
        reports.append(replay(stack.runtime.store, stack.bus, "events", started))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN each dead letter was published by exactly one of them
    assert sum(r.replayed for r in reports) == 3
    stack.bus.drain()
    assert sorted(m.attributes[REPLAY_ATTRIBUTE] for m in published) == sorted(
        letter.message_id for _, letter in letters(stack.runtime.store, "events", started)
    )
    assert len(stored_events(stack, tenant)) == 3


def test_replay_is_scoped_by_topic_tenant_and_time(stack: LocalStack, account: Account) -> None:
    tenant = account.tenant_id
    before = clock.now()
    _dead_letter_events(stack, tenant, count=1)
    after = clock.now() + timedelta(seconds=1)
    store = stack.runtime.store
    assert len(letters(store, "events", before, tenant)) == 1
    assert letters(store, "events", before, tenant + 1) == []
    assert letters(store, "events", after) == []
    assert letters(store, "segment-compute", before) == []
    assert replay(store, stack.bus, "events", after).replayed == 0


def _cli_environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """The environment of an operator shell on the stack's data (same data dir and database)."""
    monkeypatch.setenv("SEGOPS_ENVIRONMENT", "test")
    monkeypatch.setenv("SEGOPS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SEGOPS_CHDB_PATH", str(settings.chdb_path))
    monkeypatch.setenv("SEGOPS_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    monkeypatch.setenv("SEGOPS_JWT_SECRET", settings.jwt_secret.get_secret_value())
    monkeypatch.setenv("SEGOPS_WRITER_FLUSH_SECONDS", "0")


def test_the_replay_command_redrives_dead_letters_once(
    stack: LocalStack, account: Account, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = account.tenant_id
    since = (clock.now() - timedelta(minutes=1)).replace(tzinfo=None).isoformat()
    _dead_letter_events(stack, tenant, count=2)
    _cli_environment(monkeypatch, stack.settings)
    try:
        # WHEN an operator runs the command twice
        assert ops_main(["replay", "--topic", "events", "--since", since, "--tenant", str(tenant)]) == 0
        assert ops_main(["replay", "--topic", "events", "--since", since]) == 0
    finally:
        set_runtime(stack.runtime)
    first, second = capsys.readouterr().out.splitlines()[-2:]
    assert first == '{"topic":"events","replayed":1,"already_replayed":0,"in_progress":0}'
    assert second == '{"topic":"events","replayed":0,"already_replayed":1,"in_progress":0}'
    # THEN the events were delivered by the command's own stack, once
    assert sorted(row["user_id"] for row in stored_events(stack, tenant)) == ["u0", "u1"]


@pytest.mark.parametrize(
    "argv",
    [
        ["replay", "--topic", "events"],
        ["replay", "--topic", "nope", "--since", "2026-01-01"],
        ["replay", "--topic", "events", "--since", "yesterday"],
        ["replay", "--topic", "events", "--since", "2026-01-01", "--tenant", "x1"],
        ["unknown"],
    ],
)
def test_the_command_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        ops_main(argv)
    assert exit_.value.code == 2


def test_the_last_attempt_comes_from_the_manifest_or_deployed_from_the_setting(settings: Settings) -> None:
    # locally every function runs in one process: its own manifest entry decides
    assert last_attempt("event_writer", settings) == 100
    assert last_attempt("not-a-manifest-function", settings) == settings.bus_max_attempts == 5
    # deployed, the zip holds no manifest: Terraform sets SEGOPS_BUS_MAX_ATTEMPTS from the entry
    deployed = settings.model_copy(update={"environment": "production", "bus_max_attempts": 37})
    assert last_attempt("event_writer", deployed) == 37


def test_a_stack_stopped_with_deliveries_in_backoff_keeps_them_for_replay(settings: Settings) -> None:
    # GIVEN a running local stack (as `make dev`), and one consumer of `events` failing: its delivery
    # waits out a long retry backoff
    slow = settings.model_copy(update={"bus_retry_base_seconds": 600.0})
    copy_migrated_schema(slow)
    stack = LocalStack(slow)
    stack.start_background()
    failures: list[str] = []

    def flaky(message: BusMessage) -> None:
        failures.append(message.message_id)
        raise ConnectionError("a backend is failing")

    stack.bus.subscribe(Topic.EVENTS, "flaky", flaky)
    api = Api(stack)
    account = api.signup()
    since = datetime.now(UTC)
    sent = {"user_id": "u1", "event_type": "page_viewed", "message_id": "m-1"}
    assert api.post("/api/ingestion/track/", sent, headers=account.key).status_code == 202
    wait_until(lambda: bool(failures) and len(stored_events(stack, account.tenant_id)) == 1)
    # WHEN the stack stops before the retry is due
    archived = stack.stop(drain_timeout=0.5)
    # THEN the undelivered message is kept as a dead letter, not dropped
    assert archived == {"events": 1}
    [(_, letter)] = letters(stack.runtime.store, "events", since, account.tenant_id)
    assert letter.function == "flaky" and "stopped before delivering" in letter.error
    # AND replaying it on the next stack delivers it, the stored event staying stored once
    again = LocalStack(slow)
    try:
        report = replay(again.runtime.store, again.bus, "events", since, account.tenant_id)
        again.bus.drain()
        assert report.replayed == 1
        assert [e["message_id"] for e in stored_events(again, account.tenant_id)] == ["m-1"]
    finally:
        again.stop()
