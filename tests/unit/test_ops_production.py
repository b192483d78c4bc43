"""An operator command run with production settings never acts on this machine's local backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from segops.ops.__main__ import main


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("BUS", "STORE", "CACHE", "WAREHOUSE", "OBJECTS", "USES"):
        monkeypatch.delenv(f"SEGOPS_{name}", raising=False)
    monkeypatch.setenv("SEGOPS_ENVIRONMENT", "production")
    monkeypatch.setenv("SEGOPS_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_a_replay_without_the_deployed_bus_and_store_is_refused(
    production: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # WHEN a production shell that lacks SEGOPS_BUS/SEGOPS_STORE replays dead letters
    assert main(["replay", "--topic", "events", "--since", "2026-01-01"]) == 2
    # THEN it says which settings are local, and touched nothing here (no stack was mounted)
    error = capsys.readouterr().err
    assert "SEGOPS_STORE=local" in error and "SEGOPS_BUS=local" in error and "SEGOPS_CACHE" not in error
    assert not production.exists()


def test_a_plan_change_names_only_the_backends_it_needs(
    production: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGOPS_STORE", "gcs")
    assert main(["plan", "set", "acme", "--name", "growth"]) == 2
    error = capsys.readouterr().err
    assert "SEGOPS_CACHE=memory" in error and "SEGOPS_STORE" not in error and "SEGOPS_BUS" not in error
