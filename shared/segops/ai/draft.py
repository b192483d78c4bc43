"""Drafting a segment definition from natural language, by the provider the settings choose.

`draft_segment(runtime, tenant_id, prompt, current=None) -> Draft`: a valid DSL definition (validated
by `segops.dsl.parse_definition`), one explanation line per condition and every warning. With
`current`, the drafted conditions refine it (both must hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from segops.ai.explanation import explain
from segops.ai.gemini import GeminiProvider
from segops.ai.offline import DraftFailed, draft_offline
from segops.ai.vocabulary import Vocabulary, tenant_vocabulary
from segops.config import Settings
from segops.dsl import SegmentDefinition, UserProperty, conditions, parse_definition
from segops.errors import ValidationFailed, invalid
from segops.metering.meter import meter_for
from segops.runtime import Runtime


@dataclass(frozen=True)
class Draft:
    definition: dict[str, Any]
    explanation: list[str]
    warnings: list[str]
    provider: str


class DraftProvider(Protocol):
    name: str

    def draft(self, prompt: str, vocabulary: Vocabulary) -> tuple[dict[str, Any], list[str]]:
        """A definition dict and warnings; raises `DraftFailed` when nothing usable came out."""
        ...


class OfflineProvider:
    name = "offline"

    def draft(self, prompt: str, vocabulary: Vocabulary) -> tuple[dict[str, Any], list[str]]:
        drafted = draft_offline(prompt, vocabulary)
        return drafted.definition, drafted.warnings


def provider_for(settings: Settings) -> DraftProvider:
    """The provider named by `SEGOPS_AI_PROVIDER`."""
    if settings.ai_provider == "gemini":
        return GeminiProvider(settings)
    return OfflineProvider()


def draft_segment(runtime: Runtime, tenant_id: int, prompt: str, current: dict[str, Any] | None = None) -> Draft:
    provider = provider_for(runtime.settings)
    vocabulary = tenant_vocabulary(runtime.warehouse, tenant_id)
    try:
        definition, warnings = provider.draft(prompt, vocabulary)
    except DraftFailed as exc:
        raise invalid("/prompt", str(exc), warnings=exc.warnings) from None
    if current is not None:
        base = current["conditions"] if current.get("logic") == "AND" else [current]
        added = definition["conditions"] if definition.get("logic") == "AND" else [definition]
        definition = {"logic": "AND", "conditions": [*base, *added]}
    try:
        parsed = parse_definition(definition)
    except ValidationFailed as exc:
        # The client sent a prompt, not a definition: the refusal is about the prompt, and like any
        # prompt that drafts nothing it is not a draft (not metered).
        problem = exc.details["errors"][0]["message"] if exc.details.get("errors") else exc.message
        raise invalid("/prompt", f"it drafts a segment that is not valid ({problem})", warnings=warnings) from None
    meter_for(runtime).count(tenant_id, "ai_drafts", 1, provider.name)
    return Draft(definition, explain(parsed), [*warnings, *_ungrounded(parsed, vocabulary)], provider.name)


def _ungrounded(definition: SegmentDefinition, vocabulary: Vocabulary) -> list[str]:
    """Names the tenant's data does not show (a model may invent them): valid, but worth a look."""
    found: list[str] = []
    for condition in conditions(definition):
        if isinstance(condition, UserProperty):
            key = condition.property.split(".")[0]
            note = f"no user has the property {key!r} yet" if key not in vocabulary.properties else ""
        else:
            name = condition.event_type
            note = f"the event type {name!r} does not occur in your data" if name not in vocabulary.event_types else ""
        if note and note not in found:
            found.append(note)
    return found
