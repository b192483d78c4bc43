"""Running syncs: a compute's diff to every active connector of the segment, and full syncs.

Idempotency: every platform operation sets a state (in list / subscribed / in audience), so repeating
a batch or a whole message converges to the same remote state. Ordering: a connector remembers the
membership version of the newest compute it applied (`applied_version`, segment_compute's publication
order); an older compute's diff arriving late is recorded as `stale` and not applied, so it cannot undo
a newer change. The same compute again (a redelivery) is applied again, harmlessly.

A diff compacted away before its sync (a message delivered more than `membership_history_hours`
after its compute, see `segops.membership.writer.compact`) cannot be applied: its rows no longer
match the message's counts, so the sync is recorded `stale` and a full sync is queued instead.

Failed users: a sync that could not push some users still advances `applied_version` (its other
users are applied) and adds the failed ones to the connector's `RetryBacklog`; the next incremental
sync pushes each of them again according to their current membership (add if a member, else
remove), and a full sync covers them all. A user leaves the backlog once a push of them succeeded.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable

import orjson

from segops import clock
from segops.bus.base import BusMessage, Topic
from segops.bus.cloudevents import parse_message
from segops.connectors import files
from segops.connectors import models as m
from segops.connectors.delivery import HttpSync, RetryPolicy, Tally
from segops.connectors.egress import EgressPolicy
from segops.connectors.identities import IdentityResolver
from segops.connectors.ledger import ConnectorLedger
from segops.connectors.platform import Platform, push
from segops.errors import Conflict, RetryableError, tenant_message
from segops.http.outages import as_outage
from segops.messages import ConnectorSyncRequested, MembershipChanged
from segops.metering import units as metering
from segops.runtime import Runtime
from segops.store import keys
from segops.tenant_secrets import connector_api_key

log = logging.getLogger("segops.connectors")


def handle_membership_changed(message: BusMessage, runtime: Runtime) -> None:
    """`membership-changes` → push the compute's diff to each active connector following the segment."""
    change = parse_message(message, MembershipChanged)
    outage: Exception | None = None
    for connector in runtime.documents.list(keys.connectors_prefix(change.tenant_id), m.Connector):
        if connector.active and connector.segment_id == change.segment_id:
            # Each connector on its own: one that fails (recorded on its own sync, `_run`) must not
            # keep the others from their diff, nor have them pushed again by a redelivery. Only an
            # outage, which a redelivery may outlive, sends the message back.
            try:
                sync_changes(runtime, connector, change)
            except Exception as exc:
                if outage is None and (isinstance(exc, RetryableError) or as_outage(exc) is not None):
                    outage = exc
    if outage is not None:
        raise outage


def handle_sync_requested(message: BusMessage, runtime: Runtime) -> None:
    """`connector-syncs` → one full sync."""
    request = parse_message(message, ConnectorSyncRequested)
    full_sync(runtime, request.tenant_id, request.connector_id, request.sync_id)


def retry_policy(runtime: Runtime) -> RetryPolicy:
    s = runtime.settings
    return RetryPolicy(
        max_attempts=s.connector_max_attempts,
        backoff_base_seconds=s.connector_backoff_base_seconds,
        backoff_max_seconds=s.connector_backoff_max_seconds,
        timeout_seconds=s.connector_timeout_seconds,
        max_wait_seconds=s.connector_max_wait_seconds,
    )


def new_sync(runtime: Runtime, connector: m.Connector, kind: m.SyncKind, **fields: object) -> m.SyncRecord:
    """A sync record numbered in its connector's own sequence (listings go newest first by id)."""
    prefix = keys.connector_syncs_prefix(connector.tenant, connector.id)

    def newest_recorded() -> int:
        # Syncs numbered by the former global counter: the connector's sequence continues after them.
        return max((int(key.rsplit("/", 1)[1]) for key in runtime.store.list(prefix)), default=0)

    sync_id = runtime.documents.next_id(keys.connector_sync_sequence(connector.tenant, connector.id), newest_recorded)
    record = m.SyncRecord.model_validate({"id": sync_id, "connector_id": connector.id, "kind": kind, **fields})
    runtime.documents.save(keys.connector_sync_key(connector.tenant, connector.id, record.id), record)
    return record


def sync_changes(runtime: Runtime, connector: m.Connector, change: MembershipChanged) -> m.SyncRecord:
    record = new_sync(runtime, connector, "incremental", compute_id=change.compute_id, computed_at=change.computed_at)
    feed = runtime.membership_feed
    version = feed.version(connector.tenant, connector.segment_id, change.compute_id)
    if version is not None and connector.applied_version is not None and version < connector.applied_version:
        record.status = "stale"
        record.started_at = record.finished_at = clock.now()
        record.error_summary = [f"compute {change.compute_id} is older than the applied state; not applied"]
        _save(runtime, connector, record)
        return record
    diff = feed.changes(connector.tenant, connector.segment_id, change.compute_id)
    if (len(diff.entered), len(diff.exited)) != (change.entered_count, change.exited_count):
        return _resync(runtime, connector, record, change)
    return _run(runtime, connector, record, version, diff.entered, diff.exited, None)


def _resync(runtime: Runtime, connector: m.Connector, record: m.SyncRecord, change: MembershipChanged) -> m.SyncRecord:
    """The compute's diff was compacted away (`segops.membership.writer.compact`) before this sync: the
    connector may have missed it, so the whole segment is resynced, unless the connector already
    applied the latest published compute (a full sync since, or later diffs)."""
    latest = runtime.membership_feed.snapshot(connector.tenant, connector.segment_id).version
    record.status = "stale"
    record.started_at = record.finished_at = clock.now()
    summary = f"the diff of compute {change.compute_id} was compacted away"
    if connector.applied_version is not None and latest is not None and latest <= connector.applied_version:
        record.error_summary = [f"{summary}; the connector already applied a newer state"]
    else:
        record.error_summary = [f"{summary}; full sync {request_full_sync(runtime, connector).id} queued"]
    _save(runtime, connector, record)
    return record


def request_full_sync(runtime: Runtime, connector: m.Connector) -> m.SyncRecord:
    """Queue a full sync of the connector (`connector-syncs` → `full_sync`)."""
    if not connector.active:
        raise Conflict("connector is not active; activate it first", {"active": False})
    record = new_sync(runtime, connector, "full")
    message = ConnectorSyncRequested(
        tenant_id=connector.tenant, connector_id=connector.id, sync_id=record.id, requested_at=record.requested_at
    )
    runtime.bus.publish(Topic.CONNECTOR_SYNCS, message.model_dump_json().encode(), {"tenant_id": str(connector.tenant)})
    return record


def full_sync(runtime: Runtime, tenant_id: int, connector_id: int, sync_id: int) -> m.SyncRecord | None:
    connector = runtime.documents.load(keys.connector_key(tenant_id, connector_id), m.Connector)
    record = runtime.documents.load(keys.connector_sync_key(tenant_id, connector_id, sync_id), m.SyncRecord)
    if connector is None or record is None:
        return None  # deleted since it was requested
    if not connector.active:
        return _refused(runtime, connector, record, "connector is not active")
    if runtime.store.get(keys.segment_key(tenant_id, connector.segment_id)) is None:
        # Its last members are no segment's any more: nothing is pushed, and the connector stops.
        _deactivate(runtime, connector)
        return _refused(
            runtime, connector, record, f"segment {connector.segment_id} was deleted: connector deactivated"
        )
    snapshot = runtime.membership_feed.snapshot(tenant_id, connector.segment_id)
    record.computed_at = snapshot.computed_at
    members = snapshot.members
    if connector.type == "file":
        return _run(runtime, connector, record, snapshot.version, (), (), members)
    # Everyone who may be on the platform but is no longer a member is removed; every member is added.
    current = set(members)
    leftover = sorted(ConnectorLedger(runtime, tenant_id, connector.id).present() - current)
    return _run(runtime, connector, record, snapshot.version, sorted(current), leftover, None)


def _refused(runtime: Runtime, connector: m.Connector, record: m.SyncRecord, why: str) -> m.SyncRecord:
    record.status = "failed"
    record.started_at = record.finished_at = clock.now()
    record.error_summary = [why]
    _save(runtime, connector, record)
    return record


def _deactivate(runtime: Runtime, connector: m.Connector) -> None:
    def stop(current: m.Connector) -> m.Connector:
        current.active = False
        current.updated_at = clock.now()
        return current

    runtime.documents.update(keys.connector_key(connector.tenant, connector.id), m.Connector, stop)


def _run(
    runtime: Runtime,
    connector: m.Connector,
    record: m.SyncRecord,
    version: int | None,
    entered: Iterable[str],
    exited: Iterable[str],
    snapshot: Iterable[str] | None,
) -> m.SyncRecord:
    record.status = "running"
    record.started_at = clock.now()
    _save(runtime, connector, record)
    tally = Tally()
    try:
        api_key = (
            None
            if connector.type == "file"
            else runtime.tenant_secrets.get(connector_api_key(connector.tenant, connector.id))
        )
        if connector.type == "file":
            _run_file(runtime, connector, record, entered, exited, snapshot)
            tally.added, tally.removed = record.added, record.removed
        elif api_key is None:
            tally.errors.append("credentials are not set")
        else:
            platform, resolver = build_platform(runtime, connector, api_key)
            ledger = ConnectorLedger(runtime, connector.tenant, connector.id)
            entered, exited = list(entered), list(exited)
            if record.kind == "incremental":
                retry_add, retry_remove = _retries(runtime, connector, set(entered) | set(exited))
                entered, exited = entered + retry_add, exited + retry_remove
            push(platform, "remove", exited, resolver, tally, ledger)
            push(platform, "add", entered, resolver, tally, ledger)
            _settle_backlog(runtime, connector, {*entered, *exited}, tally)
    except Exception as exc:
        message, incident = tenant_message(exc)
        log.exception(
            "connector sync failed",
            extra={"tenant_id": connector.tenant, "connector_id": connector.id, "incident": incident},
        )
        record.status = "failed"
        record.finished_at = clock.now()
        record.error_summary = [message]
        _save(runtime, connector, record)
        raise
    _finish(runtime, connector, record, tally)
    if record.status in ("succeeded", "partial") and version is not None:
        _advance(runtime, connector, version)
    return record


def _retries(runtime: Runtime, connector: m.Connector, pushed: set[str]) -> tuple[list[str], list[str]]:
    """The backlog's users not already in this diff, split by their current membership: (add, remove)."""
    backlog = runtime.documents.load(keys.connector_retries_key(connector.tenant, connector.id), m.RetryBacklog)
    pending = set(backlog.user_ids) - pushed if backlog else set()
    if not pending:
        return [], []
    members = runtime.membership_feed.snapshot(connector.tenant, connector.segment_id).members
    add = sorted(pending.intersection(members))
    return add, sorted(pending - set(add))


def _settle_backlog(runtime: Runtime, connector: m.Connector, pushed: set[str], tally: Tally) -> None:
    """The backlog becomes its users not pushed now plus the users whose push failed now, by
    compare-and-swap (a concurrent sync of the same connector keeps its own failures)."""
    failed = {user for entry in tally.dead_letters for user in entry["user_ids"]}
    key = keys.connector_retries_key(connector.tenant, connector.id)

    def settle(current: m.RetryBacklog) -> m.RetryBacklog:
        return m.RetryBacklog(user_ids=sorted((set(current.user_ids) - pushed) | failed))

    if runtime.documents.update(key, m.RetryBacklog, settle) is not None or not failed:
        return
    try:
        runtime.documents.create(key, m.RetryBacklog(user_ids=sorted(failed)))
    except Conflict:
        runtime.documents.update(key, m.RetryBacklog, settle)


def build_platform(runtime: Runtime, connector: m.Connector, api_key: str) -> tuple[Platform, IdentityResolver]:
    from segops.connectors.braze import BrazeSubscriptionGroup
    from segops.connectors.klaviyo import KlaviyoList
    from segops.connectors.talonone import TalonOneAudience

    settings = runtime.settings
    egress = EgressPolicy.for_platform(connector.type, settings.connector_extra_hosts, settings.connector_test_networks)
    http = HttpSync(retry_policy(runtime), egress)
    tenant = connector.tenant
    config = m.CONFIG_MODELS[connector.type].model_validate(connector.config)
    if isinstance(config, m.KlaviyoConfig):
        klaviyo = KlaviyoList(
            config,
            api_key,
            http,
            runtime.cache,
            f"{tenant}:{connector.id}",
            settings.connector_job_poll_seconds,
            settings.connector_job_timeout_seconds,
        )
        return klaviyo, _resolver(runtime, tenant, config.identifier)
    if isinstance(config, m.BrazeConfig):
        return BrazeSubscriptionGroup(config, api_key, http), _resolver(runtime, tenant, config.identifier)
    assert isinstance(config, m.TalonOneConfig)
    audience_id = config.audience_id or connector.resolved_audience_id
    integration_id = config.audience_integration_id or f"segops-{tenant}-connector-{connector.id}"
    platform = TalonOneAudience(
        config, api_key, http, audience_id, integration_id, lambda found: _remember_audience(runtime, connector, found)
    )
    prop = None if config.profile_id_from == "user_id" else config.profile_id_from
    return platform, IdentityResolver(runtime, tenant, prop)


def _resolver(runtime: Runtime, tenant_id: int, identifier: str) -> IdentityResolver:
    if identifier == "email":
        return IdentityResolver(runtime, tenant_id, "email", kind="email")
    return IdentityResolver(runtime, tenant_id, None)


def _run_file(
    runtime: Runtime,
    connector: m.Connector,
    record: m.SyncRecord,
    entered: Iterable[str],
    exited: Iterable[str],
    snapshot: Iterable[str] | None,
) -> None:
    config = m.FileConfig.model_validate(connector.config)
    run = record.compute_id if record.kind == "incremental" and record.compute_id else f"full-{record.id}"
    base = files.folder(config, connector.tenant, connector.id, connector.segment_id, run)
    stamp = record.computed_at or record.started_at or clock.now()
    if snapshot is not None:
        key, count = files.write_snapshot(runtime.objects, config, base, stamp, snapshot)
        record.files = [key]
        record.added = count
        return
    key, added, removed = files.write_changes(runtime.objects, config, base, stamp, entered, exited)
    record.files = [key]
    record.added, record.removed = added, removed
    if config.snapshot:
        current = runtime.membership_feed.snapshot(connector.tenant, connector.segment_id)
        snapshot_key, _ = files.write_snapshot(runtime.objects, config, base, stamp, current.members)
        record.files.append(snapshot_key)


def _finish(runtime: Runtime, connector: m.Connector, record: m.SyncRecord, tally: Tally) -> None:
    record.added, record.removed = tally.added, tally.removed
    record.skipped, record.failed, record.skip_reasons = tally.skipped, tally.failed, tally.skip_reasons
    record.error_summary = tally.errors
    if tally.dead_letters:
        key = m.dead_letter_key(connector.tenant, connector.id, record.id)
        lines = b"".join(orjson.dumps(entry) + b"\n" for entry in tally.dead_letters)
        runtime.objects.upload(key, io.BytesIO(lines), "application/x-ndjson")
        record.dead_letter = key
    if tally.errors and not (tally.failed or tally.added or tally.removed):
        record.status = "failed"
    elif tally.failed:
        record.status = "partial" if (tally.added or tally.removed) else "failed"
    else:
        record.status = "succeeded"
    record.finished_at = clock.now()
    _save(runtime, connector, record)
    if record.status != "failed":
        change = record.compute_id if record.kind == "incremental" and record.compute_id else f"full-{record.id}"
        metering.connector_sync(
            runtime, connector.tenant, connector.id, connector.type, change, record.added + record.removed
        )
    log.info(
        "connector sync finished",
        extra={
            "tenant_id": connector.tenant,
            "connector_id": connector.id,
            "sync_id": record.id,
            "kind": record.kind,
            "status": record.status,
            "added": record.added,
            "removed": record.removed,
            "skipped": record.skipped,
            "failed": record.failed,
        },
    )


def _save(runtime: Runtime, connector: m.Connector, record: m.SyncRecord) -> None:
    runtime.documents.save(keys.connector_sync_key(connector.tenant, connector.id, record.id), record)


def _advance(runtime: Runtime, connector: m.Connector, version: int) -> None:
    def advance(current: m.Connector) -> m.Connector:
        if current.applied_version is None or current.applied_version < version:
            current.applied_version = version
        return current

    runtime.documents.update(keys.connector_key(connector.tenant, connector.id), m.Connector, advance)


def _remember_audience(runtime: Runtime, connector: m.Connector, audience_id: int) -> None:
    def remember(current: m.Connector) -> m.Connector:
        current.resolved_audience_id = audience_id
        return current

    runtime.documents.update(keys.connector_key(connector.tenant, connector.id), m.Connector, remember)
