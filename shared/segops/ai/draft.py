"""Drafting a segment definition from natural language, by the provider the settings choose.

`draft_segment(runtime, tenant_id, prompt, current=None) -> Draft`: a valid DSL definition (validated
by `segops.dsl.parse_definition`), one explanation line per condition and every warning. With
`current`, the drafted conditions refine it (both must hold).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from segops.ai.explanation import explain
from segops.ai.offline import DraftFailed, draft_offline
from segops.ai.vocabulary import Vocabulary, tenant_vocabulary
from segops.config import Settings
from segops.dsl import parse_definition
from segops.errors import ValidationFailed
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
    """The provider named by `SEGOPS_AI_PROVIDER` (only the offline one exists today)."""
    if settings.ai_provider == "offline":
        return OfflineProvider()
    raise ValueError(f"unknown AI provider {settings.ai_provider!r}")


def draft_segment(runtime: Runtime, tenant_id: int, prompt: str, current: dict[str, Any] | None = None) -> Draft:
    provider = provider_for(runtime.settings)
    vocabulary = tenant_vocabulary(runtime.warehouse, tenant_id)
    try:
        definition, warnings = provider.draft(prompt, vocabulary)
    except DraftFailed as exc:
        raise ValidationFailed(
            f"prompt: {exc}",
            {"errors": [{"pointer": "/prompt", "message": str(exc)}], "warnings": exc.warnings},
        ) from None
    if current is not None:
        base = current["conditions"] if current.get("logic") == "AND" else [current]
        added = definition["conditions"] if definition.get("logic") == "AND" else [definition]
        definition = {"logic": "AND", "conditions": [*base, *added]}
    parsed = parse_definition(definition, ("definition",))
    return Draft(definition, explain(parsed), warnings, provider.name)
