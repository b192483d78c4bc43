"""Settings from `SEGOPS_*` environment variables: the only place configuration is read."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from segops.manifest import Backend


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEGOPS_", extra="ignore")

    environment: Literal["dev", "test", "production"] = "dev"
    data_dir: Path = Path(".segops")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # `PORT` is the Cloud Run / functions-framework convention; `SEGOPS_PORT` wins when both are set.
    platform_port: int | None = Field(default=None, ge=0, le=65535, validation_alias="PORT")
    # The built web console `make dev` serves at `/` (production serves it from a bucket instead).
    console_dir: Path = Path("console/dist")
    # Base of the links in account mail; empty: the dev server's own http://host:port.
    public_url: str = ""

    warehouse: Literal["chdb", "clickhouse"] = "chdb"
    chdb_path: Path | None = None
    clickhouse_url: str = "http://127.0.0.1:8123"
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    clickhouse_database: str = "segops"

    bus: Literal["local", "pubsub"] = "local"
    gcp_project: str = "segops-local"
    # Deployed: the function's manifest `max_delivery_attempts` (set by Terraform), its last attempt
    # before dead-lettering. Locally: the retry policy of local-bus subscriptions that are not
    # manifest functions (a function's own is its manifest trigger's, as on Pub/Sub).
    bus_max_attempts: int = Field(default=5, ge=1)
    bus_retry_base_seconds: float = Field(default=0.5, ge=0)
    # Deliveries the local bus runs at once (Pub/Sub push runs up to the manifest's `concurrency`).
    bus_concurrency: int = Field(default=64, ge=1)

    # Event writer micro-batching (docs/ingestion.md): concurrent deliveries share one INSERT, flushed
    # at this many rows or bytes, or this long after its first delivery arrived.
    writer_flush_rows: int = Field(default=50_000, ge=1)
    writer_flush_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    writer_flush_seconds: float = Field(default=0.2, ge=0, le=10)
    # ClickHouse refuses an INSERT spanning more than `max_partitions_per_insert_block` (100) partitions.
    writer_partitions_per_insert: int = Field(default=50, ge=1, le=100)
    # A client's retry of a `message_id` is recognised this long after the first copy was received
    # (Segment keeps ~24 hours, Shopify retries a webhook for 48): the writer's id lookup reads the
    # events received since then, not the tenant's whole history. Redeliveries and replays of a bus
    # message carry its events' receive time and are recognised at any age (docs/ingestion.md).
    writer_dedup_horizon_days: int = Field(default=7, ge=1, le=365)

    # Usage metering (segops.metering, docs/operations.md): API calls and accepted/refused events are
    # counted in process and flushed to the warehouse this often (and on shutdown). Off: nothing is
    # counted in process (stored events are still counted by the warehouse itself).
    metering: bool = True
    metering_flush_seconds: float = Field(default=5.0, gt=0, le=300)
    # Usage rows older than this are dropped by the tables' TTL (migration 0810_usage_retention).
    usage_retention_days: int = Field(default=400, ge=1, le=36500)

    cache: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # A dead Valkey must not stall requests (docs/operations.md § Outages): each command waits at most
    # `cache_timeout_seconds`; after a failure the client answers "unavailable" at once for
    # `cache_breaker_seconds`, then lets one command through to probe.
    cache_timeout_seconds: float = Field(default=0.25, gt=0, le=10)
    cache_breaker_seconds: float = Field(default=5.0, ge=0, le=300)

    # An export's file is kept this long after it is written (the exports bucket's lifecycle deletes
    # it; Terraform sets both from `export_retention_days`); after it, downloading it is 410 `gone`.
    export_retention_days: int = Field(default=7, ge=1, le=3650)

    store: Literal["local", "gcs"] = "local"
    store_bucket: str = "segops-control-plane"
    objects: Literal["local", "gcs"] = "local"
    objects_bucket: str = "segops-exports"
    gcs_endpoint: str = ""

    jwt_secret: SecretStr = SecretStr("")
    # Fernet keys (comma-separated, newest first) of the sealed tenant-secret backend (`segops.vault`),
    # and the HMAC key signing authenticating cache entries (`segops.cache.signed`, Secret Manager in
    # production); generated under `data_dir` for local stacks when unset.
    # Where tenant secrets (connector API keys, Shopify webhook secrets) live (`segops.tenant_secrets`):
    # `sealed` in the control-plane store under the keys below (`make dev`, tests), or one GCP Secret
    # Manager secret each (production), named `<secret_prefix>-t<tenant>-<kind>[-<id>]` in `gcp_project`.
    tenant_secrets: Literal["sealed", "secret_manager"] = "sealed"
    secret_prefix: str = Field(default="segops", pattern=r"^[a-z][a-z0-9-]{0,40}$")
    secret_manager_endpoint: str = ""
    connector_secrets_key: SecretStr = SecretStr("")
    shopify_secrets_key: SecretStr = SecretStr("")
    cache_signing_key: SecretStr = SecretStr("")
    access_token_minutes: int = 60
    refresh_token_days: int = 30
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    # Each argon2 hash holds `password_hash_memory_kib`; at most `password_hash_slots` run at once so
    # that they fit in the function's memory next to everything else (`memory_reserve_mb`). A request
    # waits up to `password_hash_wait_seconds` for a slot, then gets a 429.
    function_memory_mb: int = Field(default=512, ge=128)
    memory_reserve_mb: int = Field(default=256, ge=0)
    # The function's own timeout (Terraform sets it from the manifest; a local stack runs every
    # function in one process, the longest's). A ClickHouse server that stops answering is given up on
    # `warehouse_timeout_margin_seconds` before it, so the request ends in a 503, not a kill.
    function_timeout_seconds: int = Field(default=540, ge=1, le=3600)
    warehouse_timeout_margin_seconds: int = Field(default=5, ge=0)
    password_hash_wait_seconds: float = Field(default=5.0, ge=0)
    # Unauthenticated attempts: failed logins per account, logins per client address, signups per
    # email and per client address, each in a fixed window.
    login_failures_per_account: int = Field(default=10, ge=1)
    logins_per_address: int = Field(default=60, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    signups_per_email: int = Field(default=3, ge=1)
    signups_per_address: int = Field(default=20, ge=1)
    signup_window_seconds: int = Field(default=3600, ge=1)
    # Proxies in front of the function that append the client to X-Forwarded-For (0: the socket peer).
    trusted_proxy_hops: int = Field(default=0, ge=0)
    api_key_cache_seconds: float = 5.0
    # The plan of a tenant the operator gave none (`python -m segops.ops plan set`, docs/operations.md).
    plan_events_per_month: int = Field(default=50_000_000, ge=0)
    plan_api_calls_per_minute: int = Field(default=60_000, ge=1)
    plan_api_calls_per_minute_per_key: int = Field(default=30_000, ge=1)
    plan_active_segments: int = Field(default=1_000, ge=0)
    plan_connectors: int = Field(default=100, ge=0)
    email_token_hours: int = Field(default=24, ge=1)
    invitation_days: int = Field(default=7, ge=1)

    # Account mail: "dev" keeps it in the data dir (listed at /dev/mailbox/), "smtp" sends it.
    mailer: Literal["dev", "smtp"] = "dev"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_from: str = "SegOps <no-reply@segops.local>"

    connector_max_attempts: int = Field(default=5, ge=1)
    connector_backoff_base_seconds: float = Field(default=0.5, ge=0)
    connector_backoff_max_seconds: float = Field(default=30.0, ge=0)
    connector_timeout_seconds: float = Field(default=10.0, gt=0)
    connector_max_wait_seconds: float = Field(default=120.0, ge=0)
    connector_job_poll_seconds: float = Field(default=2.0, ge=0)
    connector_job_timeout_seconds: float = Field(default=300.0, ge=0)
    # Host patterns connectors may reach besides each platform's documented API hosts (JSON list;
    # "*" stands for one or more labels), e.g. a Talon.One deployment on its own domain.
    connector_extra_hosts: list[str] = Field(default_factory=list)
    # Tests only (refused in production): networks exempt from the connector address check, reachable
    # over http too, for the test suite's loopback contract servers. See `segops.connectors.egress`.
    connector_test_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)

    # Who drafts segment definitions from natural language (segops.ai): "offline" needs no network;
    # "gemini" calls Vertex AI as the function's service account (Terraform grants it only then).
    ai_provider: Literal["offline", "gemini"] = "offline"
    ai_timeout_seconds: float = Field(default=20.0, gt=0, le=55)
    gemini_project: str = ""
    gemini_location: str = "us-central1"
    gemini_model: str = ""
    gemini_base_url: str = ""  # another endpoint than {location}-aiplatform.googleapis.com (tests, proxies)

    max_body_bytes: int = 1_048_576
    scheduler_interval_seconds: float = 60.0
    # "Users changed" notices of one tenant within this window become one delta compute.
    compute_debounce_seconds: float = Field(default=2.0, ge=0, le=60)
    # A compute holder takes no new work after this long (the function times out at 540 s): a busy
    # tenant yields and re-queues itself (`DrainRequested`) instead of overrunning.
    compute_drain_budget_seconds: float = Field(default=300.0, ge=0, le=530)
    # Bounds of every statement whose cost follows a tenant's size (computes, previews; see
    # `segops.warehouse.limits`): its memory, past a quarter of which aggregations and sorts spill to
    # disk instead of failing, and its run time (a compute's within the 540 s function, a preview's
    # within the HTTP function's).
    query_max_memory_bytes: int = Field(default=2_000_000_000, ge=10_000_000)
    compute_max_execution_seconds: int = Field(default=300, ge=1, le=530)
    request_max_execution_seconds: int = Field(default=20, ge=1, le=55)
    # One compute statement stays under this size: ClickHouse refuses a query text over its
    # `max_query_size` (256 KiB by default), so a tenant's segments are split into several passes.
    compute_max_query_bytes: int = Field(default=250_000, ge=10_000)
    # Membership snapshots and diffs stay readable at least this long after a newer compute
    # supersedes them; the scheduler compacts each tenant's change log this often.
    membership_history_hours: float = Field(default=24.0, ge=0)
    # Lookalike segments are retrained by the scheduler at most this often (and after their seed changes).
    lookalike_refresh_minutes: float = Field(default=60.0, ge=0)
    log_level: str = "INFO"
    # A deployed function's manifest `uses` (JSON list): other backends are never built, so a
    # function ships and connects to only what it declares. None (local stacks): all of them.
    uses: list[Backend] | None = None

    @model_validator(mode="after")
    def _gemini_configured(self) -> Settings:
        if self.ai_provider == "gemini" and not (self.gemini_project and self.gemini_model):
            raise ValueError("SEGOPS_AI_PROVIDER=gemini needs SEGOPS_GEMINI_PROJECT and SEGOPS_GEMINI_MODEL")
        return self

    @model_validator(mode="after")
    def _no_test_allowances_in_production(self) -> Settings:
        if self.environment == "production" and self.connector_test_networks:
            raise ValueError("SEGOPS_CONNECTOR_TEST_NETWORKS is for tests; it is refused in production")
        return self

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def objects_dir(self) -> Path:
        return self.data_dir / "objects"

    @property
    def password_hash_slots(self) -> int:
        spare_kib = (self.function_memory_mb - self.memory_reserve_mb) * 1024
        return max(1, spare_kib // self.password_hash_memory_kib)

    @property
    def mailbox_dir(self) -> Path:
        return self.data_dir / "mailbox"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.listen_port()[0]}"

    @property
    def chdb_dir(self) -> Path:
        return self.chdb_path or self.data_dir / "chdb"

    def listen_port(self) -> tuple[int, str]:
        """The port `make dev` serves on and the variable it came from (`SEGOPS_PORT`, `PORT`, or `default`)."""
        if "port" in self.model_fields_set:
            return self.port, "SEGOPS_PORT"
        if self.platform_port is not None:
            return self.platform_port, "PORT"
        return self.port, "default"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
