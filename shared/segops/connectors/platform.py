"""What every push platform implements, and the loop that feeds it entered/exited users in batches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from segops.connectors.delivery import PlatformError, Tally, chunks
from segops.connectors.identities import IdentityResolver, Recipient
from segops.connectors.ledger import ConnectorLedger

Action = Literal["add", "remove"]


@dataclass
class BatchOutcome:
    """Per-identifier results of one batch; identifiers not listed succeeded."""

    failed: dict[str, PlatformError] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)


class Platform(Protocol):
    """One external audience. `add`/`remove` take at most `batch_size` distinct identifiers and either
    return per-identifier outcomes or raise `PlatformError` when the whole batch failed."""

    batch_size: int

    def add(self, identifiers: list[str]) -> BatchOutcome: ...

    def remove(self, identifiers: list[str]) -> BatchOutcome: ...


def push(
    platform: Platform,
    action: Action,
    user_ids: Iterable[str],
    resolver: IdentityResolver,
    tally: Tally,
    ledger: ConnectorLedger,
) -> None:
    """Apply one action to every user, batch by batch. A failed batch is tallied and the rest continue.
    The ledger is marked present before an add and absent only after a removal succeeded."""
    for batch in chunks(resolver.resolve(user_ids, tally), platform.batch_size * 4):
        by_identifier: dict[str, list[Recipient]] = {}
        for recipient in batch:
            by_identifier.setdefault(recipient.identifier, []).append(recipient)
        for identifiers in chunks(list(by_identifier), platform.batch_size):
            _push_batch(platform, action, identifiers, by_identifier, tally, ledger)


def _push_batch(
    platform: Platform,
    action: Action,
    identifiers: list[str],
    by_identifier: dict[str, list[Recipient]],
    tally: Tally,
    ledger: ConnectorLedger,
) -> None:
    if action == "add":
        ledger.mark((r.user_id for i in identifiers for r in by_identifier[i]), present=True)
    try:
        outcome = platform.add(identifiers) if action == "add" else platform.remove(identifiers)
    except PlatformError as error:
        tally.fail(action, [r.user_id for i in identifiers for r in by_identifier[i]], error)
        return
    gone: list[str] = []
    for identifier in identifiers:
        users = [r.user_id for r in by_identifier[identifier]]
        if identifier in outcome.failed:
            tally.fail(action, users, outcome.failed[identifier])
            continue
        if identifier in outcome.absent:
            tally.skip("not found on the platform (nothing to remove)", len(users))
        elif action == "add":
            tally.added += len(users)
        else:
            tally.removed += len(users)
        if action == "remove":
            gone.extend(users)
    ledger.mark(gone, present=False)
