"""Dead letters: bus messages whose consumer gave up, archived in the control-plane store and
replayed from there exactly once.

Pub/Sub moves such a message to `<topic>-dead-letter` by itself, and the usual reason for giving up
is a backend outage (the warehouse down for longer than the manifest's retry horizon). So the
consumer archives the message on its last attempt in the control-plane store, which that outage does
not touch: the body, attributes, error and attempt, under the tenant it names (`store.keys`).

`replay` publishes every archived message of a topic again, once: a record is claimed by
compare-and-swap before its message is re-published and marked replayed after, so concurrent or
repeated replays skip it. A replay that died between the two leaves a claim that a later replay takes
over once `REPLAY_LEASE` has passed and re-publishes: at least once on the bus, which every consumer
absorbs (the event writer stores an event id once, whatever the number of deliveries).
"""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import BaseModel

from segops import clock
from segops.bus.base import Bus, BusMessage
from segops.config import Settings
from segops.manifest import PubSubTrigger, load_manifest
from segops.store import keys
from segops.store.base import GenerationMismatch, Store

log = logging.getLogger("segops.bus.dead_letters")

# Longer than re-publishing one message takes: a claim older than this belongs to a replay that died.
REPLAY_LEASE = timedelta(minutes=5)
REPLAY_ATTRIBUTE = "replay_of"


class DeadLetter(BaseModel):
    topic: str
    function: str
    message_id: str
    tenant_id: int | None
    data: str  # base64 of the message body
    attributes: dict[str, str]
    error: str
    delivery_attempt: int
    dead_lettered_at: datetime
    replay_started_at: datetime | None = None
    replayed_at: datetime | None = None
    replayed_message_id: str | None = None

    @property
    def body(self) -> bytes:
        return base64.b64decode(self.data)


def last_attempt(function: str, settings: Settings) -> int:
    """The delivery attempt after which the bus dead-letters a message of `function`: its manifest
    trigger's `max_delivery_attempts`. A deployed function's process serves that one function and
    its zip holds no manifest: Terraform passes the number as `SEGOPS_BUS_MAX_ATTEMPTS`. Elsewhere (the
    local stack serves every function in one process) the manifest is read; a function outside it,
    as in tests, gets the local bus's default."""
    if settings.environment == "production":
        return settings.bus_max_attempts
    try:
        trigger = load_manifest().function(function).trigger
    except KeyError:
        return settings.bus_max_attempts
    assert isinstance(trigger, PubSubTrigger), function
    return trigger.max_delivery_attempts


def _tenant_of(message: BusMessage) -> int | None:
    value = message.attributes.get("tenant_id", "")
    return int(value) if value.isascii() and value.isdigit() else None


def record(store: Store, message: BusMessage, function: str, error: BaseException) -> str:
    """Archive `message` (its last attempt failed with `error`); returns the record's key. A message
    already archived (a duplicate last delivery) keeps its first record."""
    tenant_id = _tenant_of(message)
    key = keys.dead_letter_key(tenant_id, message.topic, message.message_id)
    letter = DeadLetter(
        topic=message.topic,
        function=function,
        message_id=message.message_id,
        tenant_id=tenant_id,
        data=base64.b64encode(message.data).decode(),
        attributes=message.attributes,
        error=f"{type(error).__name__}: {error}"[:500],
        delivery_attempt=message.delivery_attempt,
        dead_lettered_at=clock.now(),
    )
    with contextlib.suppress(GenerationMismatch):
        store.put(key, letter.model_dump(mode="json"), if_generation=0)
    log.error(
        "message dead-lettered",
        extra={"function": function, "topic": message.topic, "message_id": message.message_id, "key": key},
    )
    return key


def _keys(store: Store, topic: str, tenant_id: int | None) -> Iterator[str]:
    if tenant_id is not None:
        yield from store.list(keys.dead_letters_prefix(tenant_id, topic))
        return
    yield from store.list(keys.dead_letters_prefix(None, topic))
    # Every tenant's: one listing of the tenants' documents (an operator command, not a hot path).
    yield from (key for key in store.list(keys.TENANTS_PREFIX) if keys.is_tenant_dead_letter_key(key, topic))


def letters(store: Store, topic: str, since: datetime, tenant_id: int | None = None) -> list[tuple[str, DeadLetter]]:
    """The archived messages of `topic` dead-lettered at or after `since`, oldest first."""
    found = []
    for key in _keys(store, topic, tenant_id):
        document = store.get(key)
        if document is None:
            continue
        letter = DeadLetter.model_validate(document.body)
        if letter.dead_lettered_at >= since:
            found.append((key, letter))
    return sorted(found, key=lambda item: (item[1].dead_lettered_at, item[0]))


@dataclass(frozen=True)
class ReplayReport:
    replayed: int
    already_replayed: int
    in_progress: int


def _claim(store: Store, key: str) -> tuple[DeadLetter, int] | None:
    """The record claimed for this replay, and its generation; None when it is replayed or another
    live replay holds it."""
    document = store.get(key)
    if document is None:
        return None
    letter = DeadLetter.model_validate(document.body)
    now = clock.now()
    if letter.replayed_at is not None:
        return None
    if letter.replay_started_at is not None and now - letter.replay_started_at < REPLAY_LEASE:
        return None
    claimed = letter.model_copy(update={"replay_started_at": now})
    try:
        generation = store.put(key, claimed.model_dump(mode="json"), if_generation=document.generation)
    except GenerationMismatch:
        return None
    return claimed, generation


def replay(store: Store, bus: Bus, topic: str, since: datetime, tenant_id: int | None = None) -> ReplayReport:
    """Publish every not yet replayed dead letter of `topic` since `since` again, once."""
    replayed = already = busy = 0
    for key, letter in letters(store, topic, since, tenant_id):
        if letter.replayed_at is not None:
            already += 1
            continue
        claim = _claim(store, key)
        if claim is None:
            busy += 1
            continue
        claimed, generation = claim
        message_id = bus.publish(topic, claimed.body, {**claimed.attributes, REPLAY_ATTRIBUTE: claimed.message_id})
        done = claimed.model_copy(update={"replayed_at": clock.now(), "replayed_message_id": message_id})
        try:
            store.put(key, done.model_dump(mode="json"), if_generation=generation)
        except GenerationMismatch:
            # Our claim outlived its lease and another replay took the record over: it publishes too.
            log.warning("dead letter replay overtaken", extra={"topic": topic, "key": key})
        replayed += 1
        log.info("dead letter replayed", extra={"topic": topic, "key": key, "message_id": message_id})
    return ReplayReport(replayed=replayed, already_replayed=already, in_progress=busy)
