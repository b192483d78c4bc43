"""Versioned, idempotent schema migrations: `migrations/NNNN_name.sql`, applied in order, recorded.

A statement may take settings as bound parameters (`MigrationParameters`), e.g. a retention period.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from importlib import resources

from segops.config import Settings
from segops.warehouse.base import Warehouse

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available_migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("segops.warehouse").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError("two migrations share a version number")
    return found


@dataclass(frozen=True)
class MigrationParameters:
    """The settings migrations bind, by their parameter names (`{usage_retention_days:UInt32}`)."""

    usage_retention_days: int = Settings.model_fields["usage_retention_days"].default

    @classmethod
    def of(cls, settings: Settings) -> MigrationParameters:
        return cls(usage_retention_days=settings.usage_retention_days)


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def migrate(
    warehouse: Warehouse, through: int | None = None, parameters: MigrationParameters | None = None
) -> list[str]:
    """Apply every migration not yet recorded (up to version `through`); returns the names applied now."""
    bound = asdict(parameters or MigrationParameters())
    warehouse.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in warehouse.query("SELECT version FROM schema_migrations FINAL").rows}
    applied = []
    for version, name, script in available_migrations():
        if version in done or (through is not None and version > through):
            continue
        for statement in _statements(script):
            warehouse.command(statement, {name: value for name, value in bound.items() if f"{{{name}:" in statement})
        warehouse.command(
            "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": version, "n": name},
        )
        applied.append(name)
    return applied
