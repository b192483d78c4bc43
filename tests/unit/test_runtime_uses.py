"""A deployed function builds only the backends its manifest `uses` lists (SEGOPS_USES)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from segops.auth import tokens
from segops.config import Settings
from segops.mailer import Mail
from segops.runtime import Undeclared, build_runtime


def _production(tmp_path: Path, uses: list[str]) -> Settings:
    # Local kinds keep the test offline; what matters is which backends get built at all.
    return Settings(environment="production", data_dir=tmp_path, uses=uses, jwt_secret="k" * 32)


def test_undeclared_backends_are_not_built(tmp_path: Path) -> None:
    # GIVEN a function that declares only the store and the cache
    runtime = build_runtime(_production(tmp_path, ["store", "cache"]))
    # THEN those work, and touching any other backend names the manifest fix
    runtime.cache.set("k", b"v", 5)
    assert runtime.cache.get("k") == b"v"
    runtime.store.check()
    for backend in ("warehouse", "bus", "objects"):
        assert isinstance(getattr(runtime, backend), Undeclared)
    with pytest.raises(RuntimeError, match="does not declare `warehouse`"):
        runtime.warehouse.query("SELECT 1")


def test_uses_is_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the env Terraform sets (SEGOPS_USES = jsonencode(uses))
    monkeypatch.setenv("SEGOPS_USES", '["bus", "store"]')
    assert Settings().uses == ["bus", "store"]
    monkeypatch.delenv("SEGOPS_USES")
    assert Settings().uses is None  # local stacks build everything


def test_a_function_without_the_jwt_secret_starts_but_never_signs(tmp_path: Path) -> None:
    # GIVEN a production bus consumer deployed without the jwt-secret secret
    settings = Settings(environment="production", data_dir=tmp_path, uses=["store"])
    runtime = build_runtime(settings)
    # THEN it starts, and any token operation fails closed instead of using an empty key
    assert runtime.jwt_secret == ""
    with pytest.raises(RuntimeError, match="SEGOPS_JWT_SECRET"):
        tokens.issue(runtime.jwt_secret, 1, "access", timedelta(minutes=1), tokens.new_id())
    forged = tokens.issue("x" * 32, 1, "access", timedelta(minutes=1), tokens.new_id())
    with pytest.raises(RuntimeError, match="SEGOPS_JWT_SECRET"):
        tokens.verify(runtime.jwt_secret, forged, "access")
    # AND mail, without SMTP settings, fails closed too instead of landing on the instance's disk
    with pytest.raises(RuntimeError, match="SEGOPS_MAILER=smtp"):
        runtime.mailer.send(Mail(to="a@example.com", subject="subject", text="text"))
    assert not (tmp_path / "mailbox").exists()
