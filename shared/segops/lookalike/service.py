"""Computing and previewing lookalike segments (the model is in `segops.lookalike.scoring`).

Scratch rows in `lookalike_features` are keyed by the compute (or preview) id and expire after a day.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from segops.ai.vocabulary import tenant_vocabulary
from segops.errors import Conflict
from segops.lookalike.models import LookalikeDefinition, checked_seed
from segops.lookalike.scoring import (
    TRAINING_SETTINGS,
    Model,
    feature_plan,
    members_sql,
    scores_sql,
    stage_features,
    training_sql,
)
from segops.runtime import Runtime
from segops.warehouse import TenantWarehouse
from segops.warehouse.limits import limited

HISTOGRAM_BUCKETS = 10


def _scores(
    runtime: Runtime, tenant_id: int, definition: LookalikeDefinition, stage_id: str, now: datetime
) -> tuple[str, dict[str, Any], int]:
    """The scoring query over freshly staged features; also the number of seed users."""
    seed = checked_seed(runtime, tenant_id, definition)
    plan = feature_plan(tenant_vocabulary(runtime.warehouse, tenant_id))
    seeds, others = stage_features(
        runtime.warehouse, tenant_id, stage_id, plan, definition, seed, now, runtime.settings
    )
    if seeds == 0:
        raise Conflict(
            f"no member of seed segment {definition.seed_segment_id} has events to learn from",
            {"seed_segment_id": definition.seed_segment_id},
        )
    training, training_params = training_sql(
        len(plan.features), seeds, others, f"{definition.seed_segment_id}-{seed.version}"
    )
    settings = runtime.settings
    means, deviations, weights = (
        TenantWarehouse(runtime.warehouse, tenant_id)
        .query(
            limited(training, settings, settings.compute_max_execution_seconds, **TRAINING_SETTINGS),
            {**training_params, "stage_id": stage_id},
        )
        .rows[0]
    )
    sql, params = scores_sql(Model(list(means), list(deviations), list(weights)))
    return sql, {**params, "stage_id": stage_id}, seeds


def stage_members(
    runtime: Runtime, tenant_id: int, stage_id: str, segment_id: int, definition: LookalikeDefinition, now: datetime
) -> None:
    """Score everyone and stage the lookalike's members as the compute's results (`compute_results`)."""
    scores, params, _ = _scores(runtime, tenant_id, definition, stage_id, now)
    chosen, chosen_params = members_sql(definition, scores)
    staged = (
        "INSERT INTO compute_results (tenant_id, compute_id, segment_id, user_id) "
        f"SELECT {{tenant_id:UInt64}}, {{stage_id:String}}, {{lookalike_segment:UInt64}}, user_id FROM ({chosen})"
    )
    TenantWarehouse(runtime.warehouse, tenant_id).command(
        limited(staged, runtime.settings, runtime.settings.compute_max_execution_seconds),
        {**params, **chosen_params, "lookalike_segment": segment_id},
    )


@dataclass(frozen=True)
class Bucket:
    min_score: float
    max_score: float
    users: int


@dataclass(frozen=True)
class LookalikePreview:
    estimated_size: int
    seed_users: int
    scored_users: int
    histogram: list[Bucket]


def preview(runtime: Runtime, tenant_id: int, definition: LookalikeDefinition, now: datetime) -> LookalikePreview:
    """The size the definition would have now and how non-seed users' scores are distributed."""
    stage_id = f"preview-{uuid.uuid4().hex}"
    scores, params, seeds = _scores(runtime, tenant_id, definition, stage_id, now)
    chosen, chosen_params = members_sql(definition, scores)
    wh = TenantWarehouse(runtime.warehouse, tenant_id)
    size = int(wh.query(f"SELECT count() FROM ({chosen})", {**params, **chosen_params}).scalar() or 0)
    counts = {
        int(bucket): int(users)
        for bucket, users in wh.query(
            f"SELECT least(toUInt32(floor(score * {HISTOGRAM_BUCKETS})), {HISTOGRAM_BUCKETS - 1}) AS bucket, "
            f"count() FROM ({scores}) WHERE seed = 0 GROUP BY bucket",
            params,
        ).rows
    }
    histogram = [
        Bucket(i / HISTOGRAM_BUCKETS, (i + 1) / HISTOGRAM_BUCKETS, counts.get(i, 0)) for i in range(HISTOGRAM_BUCKETS)
    ]
    return LookalikePreview(size, seeds, sum(counts.values()), histogram)
