"""Composition root: the only place that turns settings into concrete backends."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from segops import logs, vault
from segops.auth.passwords import Passwords
from segops.bus.base import Bus
from segops.cache.base import Cache
from segops.config import Settings, get_settings
from segops.connectors.feed import MembershipFeed
from segops.connectors.warehouse_feed import WarehouseMembershipFeed
from segops.mailer import DevMailbox, Mailer, NoMailer, SmtpMailer
from segops.objects.base import ObjectStore
from segops.store.base import Store
from segops.store.documents import DocumentRepository
from segops.tenant_secrets.base import TenantSecrets
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
    membership_feed: MembershipFeed
    mailer: Mailer
    # Keys a function holds only when its manifest lists the secret (empty otherwise: users fail closed).
    connector_secrets_key: str = ""
    shopify_secrets_key: str = ""
    cache_signing_key: str = ""

    @property
    def documents(self) -> DocumentRepository:
        return DocumentRepository(self.store)

    @cached_property
    def tenant_secrets(self) -> TenantSecrets:
        # Built on first use: only the functions that handle connector or Shopify secrets need it.
        return build_tenant_secrets(self.settings, self.documents, self.connector_secrets_key, self.shopify_secrets_key)

    @cached_property
    def passwords(self) -> Passwords:
        # Built on first use: only the functions that log users in pay for the argon2 set-up.
        settings = self.settings
        return Passwords(
            settings.password_hash_time_cost,
            settings.password_hash_memory_kib,
            settings.password_hash_slots,
            settings.password_hash_wait_seconds,
        )


def _gcs_client(settings: Settings) -> Any:
    import google.cloud.storage as storage

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
        send_receive_timeout=max(1, settings.function_timeout_seconds - settings.warehouse_timeout_margin_seconds),
    )


def build_bus(settings: Settings) -> Bus:
    if settings.bus == "local":
        from segops.bus.local import LocalBus

        return LocalBus(
            settings.bus_max_attempts, settings.bus_retry_base_seconds, concurrency=settings.bus_concurrency
        )
    from segops.bus.pubsub import PubSubBus

    return PubSubBus(settings.gcp_project)


def build_cache(settings: Settings) -> Cache:
    if settings.cache == "memory":
        from segops.cache.memory import MemoryCache

        return MemoryCache()
    from segops.cache.redis_backend import RedisCache

    return RedisCache(settings.redis_url, settings.cache_timeout_seconds, settings.cache_breaker_seconds)


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


def build_mailer(settings: Settings) -> Mailer:
    if settings.mailer == "dev":
        return NoMailer() if settings.environment == "production" else DevMailbox(settings.mailbox_dir)
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        settings.smtp_username,
        settings.smtp_password.get_secret_value(),
        settings.smtp_starttls,
        settings.smtp_timeout_seconds,
    )


class Undeclared:
    """Stands in for a backend the function's manifest `uses` does not list: any use is a deployment bug."""

    def __init__(self, backend: str) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(
            f"this function does not declare `{self._backend}` in its manifest `uses` (SEGOPS_USES); add it there"
        )


def build_tenant_secrets(
    settings: Settings, documents: DocumentRepository, connector_key: str, shopify_key: str
) -> TenantSecrets:
    if settings.tenant_secrets == "secret_manager":
        from segops.tenant_secrets.secret_manager import SecretManagerSecrets

        return SecretManagerSecrets(settings.gcp_project, settings.secret_prefix, settings.secret_manager_endpoint)
    from segops.tenant_secrets.sealed import SealedSecrets

    return SealedSecrets(documents, {"connector": connector_key, "shopify": shopify_key})


def _key(settings: Settings, configured: SecretStr, name: str, generate: Callable[[], str]) -> str:
    value = configured.get_secret_value()
    if value:
        return value
    if settings.environment == "production":
        # Functions whose manifest does not list the secret never get it; its users refuse an
        # empty key (`segops.auth.tokens`, `segops.vault`, `segops.cache.signed`): fail closed.
        return ""
    # Local stacks keep generated keys next to their data so tokens and sealed secrets survive restarts.
    path = Path(settings.data_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(generate())
        path.chmod(0o600)
    return path.read_text().strip()


def build_runtime(settings: Settings | None = None, **overrides: Any) -> Runtime:
    settings = settings or get_settings()
    builders: dict[str, Callable[[Settings], Any]] = {
        "warehouse": build_warehouse,
        "bus": build_bus,
        "cache": build_cache,
        "store": build_store,
        "objects": build_objects,
    }
    parts: dict[str, Any] = {}
    for backend, build in builders.items():
        declared = settings.uses is None or backend in settings.uses
        parts[backend] = overrides.pop(backend, None) or (build(settings) if declared else Undeclared(backend))
    # Connectors read membership through this feed; tests replace it to drive them without computes.
    feed = overrides.pop("membership_feed", None) or WarehouseMembershipFeed(parts["warehouse"])
    mailer = overrides.pop("mailer", None) or build_mailer(settings)
    return Runtime(
        settings=settings,
        jwt_secret=_key(settings, settings.jwt_secret, "jwt-secret", lambda: secrets.token_urlsafe(48)),
        connector_secrets_key=_key(settings, settings.connector_secrets_key, "connector-secrets-key", vault.new_key),
        shopify_secrets_key=_key(settings, settings.shopify_secrets_key, "shopify-secrets-key", vault.new_key),
        cache_signing_key=_key(
            settings, settings.cache_signing_key, "cache-signing-key", lambda: secrets.token_urlsafe(48)
        ),
        membership_feed=feed,
        mailer=mailer,
        **parts,
        **overrides,
    )


_current: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process-wide runtime; built from the environment on first use (cold start)."""
    global _current
    with _lock:
        if _current is None:
            from segops.warehouse.migrations import MigrationParameters, migrate

            _current = build_runtime()
            # A deployed function's only set-up: its log lines are JSON (Cloud Logging reads
            # `severity`), at the configured level; without it Python prints warnings as bare text
            # and drops everything below.
            logs.configure(_current.settings.log_level)
            if _current.settings.environment != "production":
                migrate(_current.warehouse, parameters=MigrationParameters.of(_current.settings))
        return _current


def set_runtime(runtime: Runtime | None) -> None:
    global _current
    with _lock:
        _current = runtime
