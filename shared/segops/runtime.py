"""Composition root: the only place that turns settings into concrete backends."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segops.bus.base import Bus
from segops.cache.base import Cache
from segops.config import Settings, get_settings
from segops.objects.base import ObjectStore
from segops.store.base import Store
from segops.store.documents import DocumentRepository
from segops.warehouse.base import Warehouse


@dataclass
class Runtime:
    settings: Settings
    warehouse: Warehouse
    bus: Bus
    cache: Cache
    store: Store
    objects: ObjectStore
    jwt_secret: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def documents(self) -> DocumentRepository:
        return DocumentRepository(self.store)


def _gcs_client(settings: Settings) -> Any:
    from google.cloud import storage

    if settings.gcs_endpoint:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=settings.gcp_project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": settings.gcs_endpoint},
        )
    return storage.Client(project=settings.gcp_project)


def build_warehouse(settings: Settings) -> Warehouse:
    if settings.warehouse == "chdb":
        from segops.warehouse.chdb_backend import ChdbWarehouse

        return ChdbWarehouse(settings.chdb_dir, settings.clickhouse_database)
    from segops.warehouse.clickhouse_backend import ClickHouseWarehouse

    return ClickHouseWarehouse(
        settings.clickhouse_url,
        settings.clickhouse_user,
        settings.clickhouse_password.get_secret_value(),
        settings.clickhouse_database,
    )


def build_bus(settings: Settings) -> Bus:
    if settings.bus == "local":
        from segops.bus.local import LocalBus

        return LocalBus(settings.bus_max_attempts, settings.bus_retry_base_seconds)
    from segops.bus.pubsub import PubSubBus

    return PubSubBus(settings.gcp_project)


def build_cache(settings: Settings) -> Cache:
    if settings.cache == "memory":
        from segops.cache.memory import MemoryCache

        return MemoryCache()
    from segops.cache.redis_backend import RedisCache

    return RedisCache(settings.redis_url)


def build_store(settings: Settings) -> Store:
    if settings.store == "local":
        from segops.store.local import LocalStore

        return LocalStore(settings.store_dir)
    from segops.store.gcs import GcsStore

    return GcsStore(_gcs_client(settings), settings.store_bucket)


def build_objects(settings: Settings) -> ObjectStore:
    if settings.objects == "local":
        from segops.objects.local import LocalObjectStore

        return LocalObjectStore(settings.objects_dir)
    from segops.objects.gcs import GcsObjectStore

    return GcsObjectStore(_gcs_client(settings), settings.objects_bucket)


def _jwt_secret(settings: Settings) -> str:
    configured = settings.jwt_secret.get_secret_value()
    if configured:
        return configured
    if settings.environment == "production":
        raise RuntimeError("SEGOPS_JWT_SECRET must be set in production")
    # Local stacks keep a generated key next to their data so tokens survive restarts.
    path = Path(settings.data_dir) / "jwt-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def build_runtime(settings: Settings | None = None, **overrides: Any) -> Runtime:
    settings = settings or get_settings()
    parts: dict[str, Any] = {
        "warehouse": overrides.pop("warehouse", None) or build_warehouse(settings),
        "bus": overrides.pop("bus", None) or build_bus(settings),
        "cache": overrides.pop("cache", None) or build_cache(settings),
        "store": overrides.pop("store", None) or build_store(settings),
        "objects": overrides.pop("objects", None) or build_objects(settings),
    }
    return Runtime(settings=settings, jwt_secret=_jwt_secret(settings), **parts, **overrides)


_current: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime; built from the environment on first use (cold start)."""
    global _current
    with _lock:
        if _current is None:
            from segops.warehouse.migrations import migrate

            _current = build_runtime()
            if _current.settings.environment != "production":
                migrate(_current.warehouse)
        return _current


def set_runtime(runtime: Runtime | None) -> None:
    global _current
    with _lock:
        _current = runtime
