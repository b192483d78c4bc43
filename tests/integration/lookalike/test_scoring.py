"""The lookalike model in ClickHouse: trained on one thread in its own statement, then scored on every
thread with the trained values bound as parameters. The scores are the ones `evalMLMethod` gives
with the trained state."""

from __future__ import annotations

import random

from segops.localstack import LocalStack
from segops.lookalike.scoring import TRAINING_SETTINGS, Model, scores_sql, training_sql
from segops.warehouse import TenantWarehouse
from segops.warehouse.base import render_settings

TENANT = 41
STAGE = "test-scoring"
FEATURES = 4
ONE_THREAD = f" SETTINGS {render_settings(TRAINING_SETTINGS)}"


def staged(stack: LocalStack) -> TenantWarehouse:
    """GIVEN 300 staged users, 40 of them seeds that score higher on the first two features"""
    rng = random.Random(3)
    rows = []
    for i in range(300):
        seed = int(i < 40)
        features = [rng.gauss(1.5 if seed and f < 2 else 0.0, 1.0) for f in range(FEATURES)]
        rows.append((TENANT, STAGE, f"u{i:03d}", seed, features))
    stack.runtime.warehouse.insert(
        "lookalike_features", ("tenant_id", "compute_id", "user_id", "seed", "features"), rows
    )
    return TenantWarehouse(stack.runtime.warehouse, TENANT)


def test_scores_are_what_evalmlmethod_gives_with_the_trained_state(stack: LocalStack) -> None:
    wh = staged(stack)
    training, params = training_sql(FEATURES, seeds=40, others=260, shuffle="seed-1")
    # WHEN the model is trained, then everyone scored with its values as parameters
    means, deviations, weights = wh.query(training + ONE_THREAD, {**params, "stage_id": STAGE}).rows[0]
    assert len(means) == len(deviations) == FEATURES and len(weights) == FEATURES + 1
    scoring, bound = scores_sql(Model(list(means), list(deviations), list(weights)))
    scores = {user: score for user, _, score in wh.query(scoring, {**bound, "stage_id": STAGE}).rows}
    # THEN each score is evalMLMethod's with the trained state, on the same standardised features
    state = training.replace("stochasticLogisticRegression(", "stochasticLogisticRegressionState(", 1)
    assert state != training
    columns = ", ".join(f"z[{i}]" for i in range(1, FEATURES + 1))
    expected = dict(
        wh.query(
            "SELECT user_id, evalMLMethod(model, " + columns + ") FROM ("
            "SELECT user_id, arrayMap((x, m, s) -> if(s > 0, (x - m) / s, 0.), features, "
            "{means:Array(Float64)}, {deviations:Array(Float64)}) AS z FROM lookalike_features "
            "WHERE tenant_id = {tenant_id:UInt64} AND compute_id = {stage_id:String}) AS users "
            "CROSS JOIN (" + state + ONE_THREAD + ") AS trained(m, d, model)",
            {**params, **bound, "stage_id": STAGE},
        ).rows
    )
    assert scores.keys() == expected.keys() and len(scores) == 300
    assert all(abs(scores[user] - expected[user]) <= 1e-12 for user in scores)
    # AND the seed scores above the others: the model learnt the planted difference
    seeds = [score for user, score in scores.items() if int(user[1:]) < 40]
    others = [score for user, score in scores.items() if int(user[1:]) >= 40]
    assert sum(seeds) / len(seeds) > sum(others) / len(others) + 0.2


def test_training_twice_gives_the_same_model(stack: LocalStack) -> None:
    wh = staged(stack)
    training, params = training_sql(FEATURES, seeds=40, others=260, shuffle="seed-1")
    first = wh.query(training + ONE_THREAD, {**params, "stage_id": STAGE}).rows[0]
    again = wh.query(training + ONE_THREAD, {**params, "stage_id": STAGE}).rows[0]
    assert first == again
    # a different shuffle key (a new seed snapshot) trains on another order: another model
    reshuffled, other = training_sql(FEATURES, seeds=40, others=260, shuffle="seed-2")
    assert wh.query(reshuffled + ONE_THREAD, {**other, "stage_id": STAGE}).rows[0][2] != first[2]
