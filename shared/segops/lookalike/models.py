"""The lookalike definition and the rules its seed must satisfy."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, ValidationError, model_validator

from segops.boundary import StrictModel
from segops.errors import Conflict, invalid
from segops.http.pointers import validation_error
from segops.ids import Id
from segops.membership import store as membership
from segops.runtime import Runtime
from segops.segments import models as m
from segops.store import keys


class LookalikeDefinition(StrictModel):
    """`{seed_segment_id, size | min_score, lookback_days = 90, exclude_seed = true}`."""

    # JSON types only: `"size": true` or `"exclude_seed": "no"` is refused, not read as 1 or false.
    model_config = ConfigDict(frozen=True, strict=True)

    seed_segment_id: Id
    size: int | None = Field(default=None, ge=1, le=100_000_000, description="The N best-scoring users.")
    min_score: float | None = Field(default=None, gt=0, lt=1, description="Every user scoring at least this.")
    lookback_days: int = Field(default=90, ge=1, le=3650)
    exclude_seed: bool = True

    @model_validator(mode="after")
    def _size_or_score(self) -> LookalikeDefinition:
        if (self.size is None) == (self.min_score is None):
            raise ValueError("give exactly one of size and min_score")
        return self


def parse_lookalike(raw: Any, prefix: tuple[str | int, ...] = ()) -> LookalikeDefinition:
    try:
        return LookalikeDefinition.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, prefix) from None


def checked_seed(runtime: Runtime, tenant_id: int, definition: LookalikeDefinition) -> membership.Snapshot:
    """The seed's latest published membership; a missing, lookalike, uncomputed or empty seed is refused."""
    pointer = "/definition/seed_segment_id"
    seed = runtime.documents.load(keys.segment_key(tenant_id, definition.seed_segment_id), m.Segment)
    if seed is None or seed.tenant != tenant_id:
        raise invalid(pointer, f"no segment {definition.seed_segment_id} in this tenant")
    if seed.segment_type == "lookalike":
        raise invalid(pointer, "the seed of a lookalike cannot be a lookalike segment: choose a rule or ai segment")
    snapshot = membership.latest_snapshot(runtime.warehouse, tenant_id, seed.id)
    if snapshot is None:
        raise Conflict(
            f"seed segment {seed.id} has not been computed yet (or has never had members): compute it first",
            {"seed_segment_id": seed.id},
        )
    if snapshot.member_count == 0:
        raise Conflict(f"seed segment {seed.id} has no members", {"seed_segment_id": seed.id})
    return snapshot
