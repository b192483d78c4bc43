"""The LLM draft provider: Gemini on Vertex AI through the `google-genai` SDK.

Structured output: the request carries a JSON schema derived from the DSL's pydantic models
(`GeminiAnswer`), and the answer is validated by those same models (`parse_definition`). An answer
that fails validation gets one repair round: the validation errors go back to the model with its
answer. The tenant's vocabulary is in the prompt, so names are the tenant's own. Any transport
failure, timeout or a second invalid answer is a 503 `service_unavailable`.

Authentication is the function's service account (application default credentials); the client
talks to `{location}-aiplatform.googleapis.com` unless `SEGOPS_GEMINI_BASE_URL` says otherwise.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, Field

from segops.ai.vocabulary import Vocabulary
from segops.config import Settings
from segops.dsl import SegmentDefinition, parse_definition
from segops.errors import DependencyDown, ValidationFailed, invalid

log = logging.getLogger("segops.ai")

INSTRUCTIONS = """You turn a marketer's description of an audience into a segment definition of the
SegOps DSL. Answer only with JSON matching the response schema: `definition` (the root group) and
`warnings` (one short sentence per phrase you could not express or assumption you made; never
drop a phrase silently). Use only the event types, payload keys and user property keys of the
tenant vocabulary below, spelled exactly as given; string values should be ones listed there when
one fits. Conditions: event_count (how many times an event happened, optionally within
window_days and filtered by payload `where`), monetary (sum/avg/min/max of a numeric payload key),
recency (days since the last event: gt = not for more than N days, lt = within the last N days),
user_property (the user's latest context_identified payload). Months are 30 days. There is no NOT:
negate by choosing the opposite operator (never did = event_count eq 0)."""


class GeminiAnswer(BaseModel):
    """The response schema: a definition and the model's own warnings."""

    definition: SegmentDefinition
    warnings: list[str] = Field(default_factory=list, max_length=50)


def response_schema() -> dict[str, Any]:
    return GeminiAnswer.model_json_schema()


class GeminiProvider:
    name = "gemini"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _client(self) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            timeout=int(self.settings.ai_timeout_seconds * 1000),
            base_url=self.settings.gemini_base_url or None,
        )
        return genai.Client(
            vertexai=True,
            project=self.settings.gemini_project,
            location=self.settings.gemini_location,
            http_options=options,
        )

    def draft(self, prompt: str, vocabulary: Vocabulary) -> tuple[dict[str, Any], list[str]]:
        from google.genai import types

        client = self._client()
        config = types.GenerateContentConfig(
            system_instruction=INSTRUCTIONS,
            response_mime_type="application/json",
            response_json_schema=response_schema(),
            temperature=0,
        )
        question = (
            f"Tenant vocabulary (JSON):\n{json.dumps(vocabulary.summary(), sort_keys=True)}\n\n"
            f"Audience description:\n{prompt}"
        )
        contents: list[Any] = [types.Content(role="user", parts=[types.Part(text=question)])]
        answer = self._generate(client, contents, config)
        try:
            return _validated(answer)
        except ValidationFailed as invalid:
            log.info("gemini answer invalid, repairing", extra={"errors": invalid.details.get("errors")})
            contents += [
                types.Content(role="model", parts=[types.Part(text=answer)]),
                types.Content(role="user", parts=[types.Part(text=_repair_request(invalid))]),
            ]
        repaired = self._generate(client, contents, config)
        try:
            return _validated(repaired)
        except ValidationFailed as still:
            raise DependencyDown(
                "the AI provider did not produce a valid definition", {"errors": still.details.get("errors", [])}
            ) from None

    def _generate(self, client: Any, contents: list[Any], config: Any) -> str:
        try:
            response = client.models.generate_content(
                model=self.settings.gemini_model, contents=contents, config=config
            )
        except Exception as exc:  # the SDK raises transport, timeout and API errors of several libraries
            log.warning("gemini request failed", extra={"error": type(exc).__name__})
            raise DependencyDown("the AI provider is unavailable", {"provider": self.name}) from exc
        text = response.text
        if not text:
            raise DependencyDown("the AI provider returned no answer", {"provider": self.name})
        return str(text)


def _validated(answer: str) -> tuple[dict[str, Any], list[str]]:
    """The answer's definition, validated by the DSL models; problems as `ValidationFailed` with pointers."""
    try:
        document = json.loads(answer)
    except json.JSONDecodeError as exc:
        raise _invalid("", f"not JSON: {exc}") from None
    if not isinstance(document, dict) or "definition" not in document:
        raise _invalid("/definition", "the answer must be an object with a 'definition'")
    definition = document["definition"]
    parse_definition(definition, ("definition",))
    warnings = document.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise _invalid("/warnings", "warnings must be a list of strings")
    return definition, warnings


def _invalid(pointer: str, message: str) -> ValidationFailed:
    return invalid(pointer, message)


def _repair_request(invalid: ValidationFailed) -> str:
    errors = invalid.details.get("errors", [])
    lines = "\n".join(f"- {e.get('pointer') or '/'}: {e.get('message')}" for e in errors)
    return f"Your answer is not a valid definition:\n{lines}\nAnswer again with the whole corrected JSON."
