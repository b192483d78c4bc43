from __future__ import annotations

from collections.abc import Mapping

import google.cloud.pubsub_v1 as pubsub_v1

from segops.bus.base import Topic

# Well inside the ingestion functions' 30 s timeout: with Pub/Sub unreachable the caller gets a 503 it
# can retry (docs/operations.md § Outages), not the platform's timeout.
PUBLISH_TIMEOUT_SECONDS = 10.0


class PubSubBus:
    """Google Pub/Sub publisher; consumption is push delivery to the functions through Eventarc."""

    def __init__(
        self,
        project: str,
        client: pubsub_v1.PublisherClient | None = None,
        publish_timeout_seconds: float = PUBLISH_TIMEOUT_SECONDS,
    ) -> None:
        self._project = project
        self._client = client or pubsub_v1.PublisherClient()
        self._publish_timeout = publish_timeout_seconds

    def topic_path(self, topic: str) -> str:
        return str(self._client.topic_path(self._project, topic))

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        future = self._client.publish(self.topic_path(topic), data, **dict(attributes or {}))
        return str(future.result(timeout=self._publish_timeout))

    def check(self) -> None:
        self._client.get_topic(topic=self.topic_path(Topic.EVENTS), timeout=5)

    def worker_status(self) -> str:
        """Consumers are push subscriptions managed by Pub/Sub; the topic being reachable is the check."""
        self.check()
        return "ok"
