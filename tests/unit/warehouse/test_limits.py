"""How a compute pass is sized: parts by user whose estimated states fit in half the spill threshold."""

from __future__ import annotations

import pytest
from segops.config import Settings
from segops.warehouse.limits import limited, pass_bytes, spill_bytes, user_parts

SETTINGS = Settings(environment="test", jwt_secret="x" * 40)  # the default 2 GB per statement


def test_a_pass_that_fits_is_one_statement() -> None:
    assert user_parts(0, 71, SETTINGS) == 1
    assert user_parts(50_000, 71, SETTINGS) == 1


def test_the_scale_one_benchmark_pass_is_split() -> None:
    # 1M users x 71 aggregates (the 51 benchmark segments): ~3.5 GB estimated, 250 MB per part
    assert user_parts(1_000_000, 71, SETTINGS) == 15


@pytest.mark.parametrize("users", [10_000, 123_457, 1_000_000, 40_000_000])
@pytest.mark.parametrize("memory", [50_000_000, 2_000_000_000, 16_000_000_000])
def test_each_part_fits_whatever_the_tenant(users: int, memory: int) -> None:
    settings = SETTINGS.model_copy(update={"query_max_memory_bytes": memory})
    parts = user_parts(users, 71, settings)
    # (a part holds at most one user more than its share)
    assert pass_bytes(-(-users // parts), 71) <= spill_bytes(settings) // 2 + pass_bytes(1, 71)


def test_every_bounded_statement_spills_past_a_quarter_of_the_limit() -> None:
    clause = limited("SELECT 1", SETTINGS, 300).split("SETTINGS", 1)[1]
    assert "max_memory_usage='2000000000'" in clause
    assert "max_bytes_before_external_group_by='500000000'" in clause
    assert "max_execution_time='300'" in clause
