from __future__ import annotations

from collections.abc import Mapping

import google.cloud.pubsub_v1 as pubsub_v1

from segops.bus.base import Topic

_PUBLISH_TIMEOUT_SECONDS = 30


class PubSubBus:
    """Google Pub/Sub publisher; consumption is push delivery to the functions through Eventarc."""

    def __init__(self, project: str, client: pubsub_v1.PublisherClient | None = None) -> None:
        self._project = project
        self._client = client or pubsub_v1.PublisherClient()

    def topic_path(self, topic: str) -> str:
        return str(self._client.topic_path(self._project, topic))

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str] | None = None) -> str:
        future = self._client.publish(self.topic_path(topic), data, **dict(attributes or {}))
        return str(future.result(timeout=_PUBLISH_TIMEOUT_SECONDS))

    def check(self) -> None:
        self._client.get_topic(topic=self.topic_path(Topic.EVENTS), timeout=5)

    def worker_status(self) -> str:
        """Consumers are push subscriptions managed by Pub/Sub; the topic being reachable is the check."""
        self.check()
        return "ok"
