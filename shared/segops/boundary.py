"""The base of every model that parses input from outside the process: request bodies and queries,
bus messages, the manifest, connector settings. An unknown field is an error, never dropped
silently: a typo in an optional field must not turn into its default."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StrictTrimmedModel(StrictModel):
    """Values a person types (names, emails, slugs, settings): surrounding whitespace is not part of them.

    Identifiers that must match byte for byte what was ingested (user ids, event types) stay on
    `StrictModel`."""

    model_config = ConfigDict(str_strip_whitespace=True)
