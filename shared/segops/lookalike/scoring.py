"""Lookalike scoring inside ClickHouse, in three statements.

1. `stage_features`: ONE aggregate pass over the tenant's events writes a feature vector per user
   into `lookalike_features` (with whether the user is in the seed): per event type (the 20 most
   frequent) the log count and the recency within the lookback window, for the two most frequent
   purchase-like event types the log sum and average of their amount, and one-hot indicators of
   low-cardinality user properties (latest `context_identified`, as in the DSL).
2. `training_sql`: features are standardised (mean/stddev over all users); a logistic regression
   (`stochasticLogisticRegression`, Adam) is trained on the seed (+1) against an equally large hash
   sample of the other users (-1), repeated in a shuffled order until it has seen about 20,000
   rows. It returns the means, the deviations and the model's weights. The training is
   deterministic: the shuffle is keyed by the seed's snapshot (`shuffle`), and the statement runs
   on one thread (`TRAINING_SETTINGS`), as the model depends on the order it sees rows in.
   `scores_sql` then scores every user in one pass on every thread, with those values bound as
   parameters: the model's probability that a user belongs with the seed, under equal priors
   (what `evalMLMethod` computes, summed in its order). A preview's size and histogram and a
   compute use one trained model each; the same data and seed give the same members.
3. The caller keeps the `size` best-scoring users (ties by user id) or those scoring at least
   `min_score`, plus the seed itself when `exclude_seed` is false.

Every value (event types, keys, property values, windows) is a bound parameter; the only numbers
formatted into the SQL are feature indexes `1..n` (and n itself, the -Resample bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from segops.ai.offline import purchase_events
from segops.ai.vocabulary import Vocabulary
from segops.config import Settings
from segops.dsl import PROPERTIES_EVENT_TYPE, StoredEvents
from segops.dsl.sources import split_by_users
from segops.lookalike.models import LookalikeDefinition
from segops.membership.store import Snapshot, members_query
from segops.warehouse import TenantWarehouse, Warehouse
from segops.warehouse.limits import AGGREGATE_BYTES, limited

FEATURE_EVENT_TYPES = 20
# Amounts cost a JSON parse of every matching row: only purchase-like event types get them.
AMOUNT_EVENT_TYPES = 2
ONE_HOT_VALUES = 5
MAX_ONE_HOTS = 30
TRAINING_ROWS = 20_000
MAX_EPOCHS = 50
HASH_RANGE = 1_000_000
_NOW = "{now:DateTime64(3, 'UTC')}"
_NUMERIC = "('Int64', 'UInt64', 'Double')"
# The tenant's events at `now`, each with what the aggregates test: the index of its event type
# among the featured ones when it is within the lookback window (else 0).
_ROWS = (
    "SELECT user_id, occurred_at, received_at, payload, "
    f"if(occurred_at > {_NOW} - toIntervalDay({{lookback_days:UInt32}}), "
    "indexOf({event_types:Array(String)}, event_type), 0) AS k, "
    "event_type = {identify:String} AS identified "
    f"FROM events WHERE tenant_id = {{tenant_id:UInt64}} AND occurred_at <= {_NOW}"
)


@dataclass
class FeaturePlan:
    """Per-user aggregates and the feature expressions over them, with their bound parameters."""

    aggregates: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def state_units(self) -> int:
        """Each user's aggregate states in `segops.warehouse.limits` units (AGGREGATE_BYTES each): one
        per aggregate, and the two -Resample arrays' value per featured event type besides."""
        buckets = len(self.params["event_types"]) + 1
        return len(self.aggregates) + 2 * (buckets * 8 // AGGREGATE_BYTES)

    def bind(self, value: Any, ch_type: str) -> str:
        name = f"lk{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{ch_type}}}"

    def aggregate(self, sql: str) -> str:
        alias = f"agg{len(self.aggregates)}"
        self.aggregates.append(f"{sql} AS {alias}")
        return alias


def feature_plan(vocabulary: Vocabulary) -> FeaturePlan:
    """Aggregates over `_ROWS` (each row's windowed event-type index `k`, `identified`) and features."""
    plan = FeaturePlan()
    with_amounts = {event.name for event in purchase_events(vocabulary)[:AMOUNT_EVENT_TYPES]}
    event_types = list(vocabulary.event_types.values())[:FEATURE_EVENT_TYPES]
    plan.params["event_types"] = [event.name for event in event_types]
    # One -Resample aggregate per measure, bucketed by `k` (the row's position in the event-type
    # list, 0 outside the window): per row one update, however many event types there are.
    buckets = f"1, {len(event_types) + 1}, 1"
    counts = plan.aggregate(f"countResample({buckets})(k)")
    lasts = plan.aggregate(f"maxResample({buckets})(occurred_at, k)")
    for index, event in enumerate(event_types, start=1):
        count, last = f"{counts}[{index}]", f"{lasts}[{index}]"
        plan.features.append(f"log1p({count})")
        plan.features.append(
            f"if({count} = 0, 0., greatest(0., 1 - dateDiff('second', {last}, {_NOW}) / "
            f"({{lookback_days:UInt32}} * 86400)))"
        )
        match = f"k = {index}"
        amount = event.amount_key()
        if amount is not None and event.name in with_amounts:
            amount_key = plan.bind(amount.name, "String")
            valued = f"{match} AND JSONType(payload, {amount_key}) IN {_NUMERIC}"
            total = plan.aggregate(f"sumIf(if({valued}, JSONExtractFloat(payload, {amount_key}), 0), {valued})")
            seen = plan.aggregate(f"countIf({valued})")
            plan.features.append(f"log1p(greatest({total}, 0))")
            plan.features.append(f"if({seen} = 0, 0., log1p(greatest({total} / {seen}, 0)))")
    properties = plan.aggregate("argMaxIf(payload, (occurred_at, received_at), identified)")
    one_hots = 0
    for key in vocabulary.properties.values():
        bound_key = plan.bind(key.name, "String")
        if key.boolean:
            cases = [f"JSONType({properties}, {bound_key}) = 'Bool' AND JSONExtractBool({properties}, {bound_key})"]
        else:
            cases = [
                f"JSONType({properties}, {bound_key}) = 'String' AND "
                f"JSONExtractString({properties}, {bound_key}) = {plan.bind(value, 'String')}"
                for value in key.values[:ONE_HOT_VALUES]
            ]
        for expression in cases:
            if one_hots == MAX_ONE_HOTS:
                break
            plan.features.append(f"toFloat64({expression})")
            one_hots += 1
    return plan


def stage_features(
    warehouse: Warehouse,
    tenant_id: int,
    stage_id: str,
    plan: FeaturePlan,
    definition: LookalikeDefinition,
    seed: Snapshot,
    now: datetime,
    settings: Settings,
) -> tuple[int, int]:
    """Write every user's feature vector (one aggregation over the tenant's events, bounded like a
    compute: split into ranges of users whose states fit in memory without spilling, which at a
    million users was measured 1.6-2x slower); returns (seed users with events, other users)."""
    members, member_params = members_query(definition.seed_segment_id, seed.version)
    wh = TenantWarehouse(warehouse, tenant_id)
    params = {
        **plan.params,
        **member_params,
        "stage_id": stage_id,
        "now": now,
        "lookback_days": definition.lookback_days,
        "identify": PROPERTIES_EVENT_TYPE,
    }
    for users in split_by_users(wh, StoredEvents(), None, plan.state_units, settings):
        rows = _ROWS + (f" AND {users.users}" if users.users else "")
        features = (
            "INSERT INTO lookalike_features (tenant_id, compute_id, user_id, seed, features) "
            "SELECT {tenant_id:UInt64}, {stage_id:String}, user_id, "
            f"user_id IN (SELECT user_id FROM ({members})), [{', '.join(plan.features)}] FROM ("
            f"SELECT user_id, {', '.join(plan.aggregates)} FROM ({rows}) GROUP BY user_id)"
        )
        wh.command(
            limited(
                features,
                settings,
                settings.compute_max_execution_seconds,
                short_circuit_function_evaluation="force_enable",
            ),
            {**params, **users.params},
        )
    seeds, others = wh.query(
        "SELECT countIf(seed = 1), countIf(seed = 0) FROM lookalike_features "
        "WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String}",
        {"stage_id": stage_id},
    ).rows[0]
    return int(seeds), int(others)


# Training order decides the model: one thread aggregates the rows in the order the shuffle sorts them.
TRAINING_SETTINGS = {"max_threads": 1}


@dataclass(frozen=True)
class Model:
    """What scoring needs from the training: each feature's mean and deviation over the staged users,
    then the weights (one per feature, the bias last)."""

    means: list[float]
    deviations: list[float]
    weights: list[float]


_STAGED = "FROM lookalike_features WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String}"


def _standardised(means: str, deviations: str) -> str:
    # Resized to the stage's own length: the filter on the stage may be evaluated on rows of other
    # stages (another tenant's, another vocabulary's) before tenant and stage filter them out, and
    # arrays of unequal sizes would make `arrayMap` raise.
    return (
        f"arrayMap((x, m, s) -> if(s > 0, (x - m) / s, 0.), arrayResize(features, length({means})), "
        f"{means}, {deviations})"
    )


def training_sql(features: int, seeds: int, others: int, shuffle: str) -> tuple[str, dict[str, Any]]:
    """`SELECT means, deviations, weights` of the model trained on the staged users (params: `stage_id`
    from the caller); run with `TRAINING_SETTINGS`. `shuffle` keys the training order (the seed's snapshot)."""
    columns = ", ".join(f"z[{i}]" for i in range(1, features + 1))
    negatives = min(others, seeds)
    keep = HASH_RANGE if others == 0 else max(1, round(HASH_RANGE * negatives / others))
    epochs = max(1, min(MAX_EPOCHS, TRAINING_ROWS // max(1, seeds + negatives)))
    sql = (
        f"WITH (SELECT (avgForEach(features), stddevPopForEach(features)) {_STAGED}) AS stats "
        "SELECT stats.1, stats.2, (SELECT stochasticLogisticRegression(0.05, 0.01, 8, 'Adam')"
        f"(label, {columns}) FROM ("
        "SELECT label, z FROM (SELECT user_id, if(seed = 1, 1, -1) AS label, "
        f"{_standardised('stats.1', 'stats.2')} AS z {_STAGED} "
        "AND (seed = 1 OR cityHash64(user_id) % {hash_range:UInt64} < {keep:UInt64})) "
        "ARRAY JOIN range({epochs:UInt32}) AS epoch "
        "ORDER BY cityHash64(user_id, epoch, {shuffle:String}), user_id, epoch"
        "))"
    )
    return sql, {"hash_range": HASH_RANGE, "keep": keep, "epochs": epochs, "shuffle": shuffle}


def scores_sql(model: Model) -> tuple[str, dict[str, Any]]:
    """`SELECT user_id, seed, score` for every staged user (params: `stage_id` from the caller)."""
    features = len(model.means)
    # The bias, then each weight times its feature, left to right, as `evalMLMethod` sums them.
    linear = " + ".join([f"w[{features + 1}]", *(f"w[{i}] * z[{i}]" for i in range(1, features + 1))])
    sql = (
        f"SELECT user_id, seed, 1 / (1 + exp(-({linear}))) AS score FROM ("
        "SELECT user_id, seed, {weights:Array(Float64)} AS w, "
        f"{_standardised('{means:Array(Float64)}', '{deviations:Array(Float64)}')} AS z {_STAGED})"
    )
    return sql, {"means": model.means, "deviations": model.deviations, "weights": model.weights}


def members_sql(definition: LookalikeDefinition, scores: str) -> tuple[str, dict[str, Any]]:
    """`SELECT user_id` of the lookalike's members among the scored users."""
    if definition.size is not None:
        chosen = f"SELECT user_id FROM ({scores}) WHERE seed = 0 ORDER BY score DESC, user_id LIMIT {{size:UInt64}}"
        params: dict[str, Any] = {"size": definition.size}
    else:
        chosen = f"SELECT user_id FROM ({scores}) WHERE seed = 0 AND score >= {{min_score:Float64}}"
        params = {"min_score": definition.min_score}
    if not definition.exclude_seed:
        staged = "lookalike_features WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String}"
        chosen = f"SELECT user_id FROM ({chosen}) UNION ALL SELECT user_id FROM {staged} AND seed = 1"
    return chosen, params
