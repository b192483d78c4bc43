"""Braze subscription-group sync: `POST <rest_endpoint>/v2/subscription/status/set`, Bearer auth.

A segment member is `subscribed` to the group, an exited user `unsubscribed`; ≤ 50 ids per call
(the documented limit for `external_ids` and `emails` alike). Setting a state is idempotent.
"""

from __future__ import annotations

from segops.connectors.delivery import HttpSync
from segops.connectors.models import BrazeConfig
from segops.connectors.platform import BatchOutcome

STATUS_BATCH = 50


class BrazeSubscriptionGroup:
    batch_size = STATUS_BATCH

    def __init__(self, config: BrazeConfig, api_key: str, http: HttpSync) -> None:
        self.config = config
        self.url = str(config.rest_endpoint).rstrip("/") + "/v2/subscription/status/set"
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def add(self, identifiers: list[str]) -> BatchOutcome:
        return self._set("subscribed", identifiers)

    def remove(self, identifiers: list[str]) -> BatchOutcome:
        return self._set("unsubscribed", identifiers)

    def _set(self, state: str, identifiers: list[str]) -> BatchOutcome:
        field = "external_ids" if self.config.identifier == "external_id" else "emails"
        group = {"subscription_group_id": self.config.subscription_group_id, "subscription_state": state}
        self.http.call("POST", self.url, self.headers, {"subscription_groups": [{**group, field: identifiers}]})
        return BatchOutcome()
