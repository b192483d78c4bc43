"""Talon.One audience sync through the Integration API (`Authorization: ApiKey-v1 <key>`).

`POST /v2/customer_audiences` with ≤ 1000 `{action: add|delete, profileIntegrationId, audienceId}`
items per call (204). An audience given by name is created once with `POST /v2/audiences`
(`{name, integrationId}`; 409 when that integration id already exists) and its id is remembered.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from segops.connectors.delivery import HttpSync, PlatformError
from segops.connectors.models import TalonOneConfig
from segops.connectors.platform import BatchOutcome

AUDIENCE_BATCH = 1000


class TalonOneAudience:
    batch_size = AUDIENCE_BATCH

    def __init__(
        self,
        config: TalonOneConfig,
        api_key: str,
        http: HttpSync,
        audience_id: int | None,
        integration_id: str,
        remember_audience: Callable[[int], None],
    ) -> None:
        self.config = config
        self.base = str(config.base_url).rstrip("/")
        self.http = http
        self.headers = {"Authorization": f"ApiKey-v1 {api_key}", "Content-Type": "application/json"}
        self.audience_id = audience_id
        self.integration_id = integration_id
        self.remember_audience = remember_audience

    def add(self, identifiers: list[str]) -> BatchOutcome:
        return self._update("add", identifiers)

    def remove(self, identifiers: list[str]) -> BatchOutcome:
        return self._update("delete", identifiers)

    def _update(self, action: str, identifiers: list[str]) -> BatchOutcome:
        audience = self.audience()
        items = [{"action": action, "profileIntegrationId": i, "audienceId": audience} for i in identifiers]
        self.http.call("POST", f"{self.base}/v2/customer_audiences", self.headers, {"data": items}, ok=(200, 204))
        return BatchOutcome()

    def audience(self) -> int:
        if self.audience_id is None:
            body = {"name": self.config.audience_name, "integrationId": self.integration_id}
            try:
                response = self.http.call("POST", f"{self.base}/v2/audiences", self.headers, body, ok=(200, 201))
            except PlatformError as error:
                if error.status == 409:
                    raise PlatformError(
                        f"an audience with integrationId {self.integration_id!r} already exists but its id is "
                        "unknown to SegOps; set config.audience_id to it",
                        409,
                    ) from error
                raise
            self.audience_id = int(orjson.loads(response.content)["id"])
            self.remember_audience(self.audience_id)
        return self.audience_id
