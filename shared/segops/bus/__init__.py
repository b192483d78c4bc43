"""Publish/consume with Pub/Sub semantics: CloudEvent envelope, at-least-once, retries, dead-letter."""

from segops.bus.base import Bus, BusMessage, Topic, dead_letter_topic

__all__ = ["Bus", "BusMessage", "Topic", "dead_letter_topic"]
