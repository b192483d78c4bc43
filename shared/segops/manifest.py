"""The function manifest (`functions/manifest.json`): one source for the dev server, packaging and Terraform."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from segops.boundary import StrictModel

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = REPO_ROOT / "functions" / "manifest.json"


class HttpTrigger(StrictModel):
    type: Literal["http"]
    routes: list[str] = Field(min_length=1)


@dataclass(frozen=True)
class RetryPolicy:
    """Pub/Sub's redelivery of a nacked message: exponential backoff from `min_backoff_seconds`,
    doubling per attempt up to `max_backoff_seconds`; after `max_attempts` the message is
    dead-lettered. Terraform gives Pub/Sub these numbers and the local bus applies the same ones."""

    max_attempts: int
    min_backoff_seconds: float
    max_backoff_seconds: float

    def backoff_seconds(self, attempt: int) -> float:
        """The wait after failed delivery attempt `attempt` (1-based) before the next one."""
        return float(min(self.max_backoff_seconds, self.min_backoff_seconds * 2 ** min(attempt - 1, 60)))

    def horizon_seconds(self) -> float:
        """How long after its first failure a message is still being retried (the sum of the waits)."""
        return sum(self.backoff_seconds(attempt) for attempt in range(1, self.max_attempts))


class PubSubTrigger(StrictModel):
    type: Literal["pubsub"]
    topic: str
    max_delivery_attempts: int = Field(default=5, ge=5, le=100)
    min_backoff_seconds: int = Field(default=10, ge=0, le=600)
    max_backoff_seconds: int = Field(default=600, ge=0, le=600)
    # How long a backend outage (the warehouse, a connector's API) the consumer rides out before
    # its messages are dead-lettered: the attempts and backoffs must retry at least this long, and
    # Terraform keeps unacknowledged messages longer than this (docs/operations.md).
    retry_horizon_hours: float = Field(gt=0, le=24 * 7)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.max_delivery_attempts, self.min_backoff_seconds, self.max_backoff_seconds)

    @model_validator(mode="after")
    def _attempts_cover_the_horizon(self) -> Self:
        covered = self.retry.horizon_seconds()
        if covered < self.retry_horizon_hours * 3600:
            raise ValueError(
                f"{self.topic}: {self.max_delivery_attempts} attempts with backoff {self.min_backoff_seconds}-"
                f"{self.max_backoff_seconds} s retry for {covered / 3600:.2f} h, less than the "
                f"declared retry_horizon_hours {self.retry_horizon_hours}"
            )
        return self


Backend = Literal["warehouse", "bus", "cache", "store", "objects"]
# Kinds of tenant secret (`segops.tenant_secrets.base.SecretKind`) and what a function does with them.
TenantSecretKind = Literal["connector", "shopify"]
TenantSecretAccess = Literal["read", "write"]


class FunctionSpec(StrictModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")
    entry_point: str
    description: str
    trigger: HttpTrigger | PubSubTrigger = Field(discriminator="type")
    memory_mb: int = Field(ge=128, le=32768)
    cpu: float = Field(default=1, gt=0)
    timeout_seconds: int = Field(ge=1, le=3600)
    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=10, ge=1)
    concurrency: int = Field(default=1, ge=1, le=1000)
    uses: list[Backend]
    publishes: list[str] = Field(default_factory=list)
    # Secret Manager secrets the function reads; Terraform exposes `jwt-secret` as SEGOPS_JWT_SECRET.
    secrets: list[str] = Field(default_factory=list)
    # Tenant secrets (connector API keys, Shopify webhook secrets) the function reads or writes, by
    # kind: Terraform grants exactly that on this deployment's Secret Manager secrets of the kind.
    tenant_secrets: dict[TenantSecretKind, TenantSecretAccess] = Field(default_factory=dict)
    # Extra non-secret SEGOPS_* settings for this function only (Terraform adds them to its env).
    env: dict[str, str] = Field(default_factory=dict)
    public: bool = False
    # Drafts segments with the configured LLM (segops.ai): Terraform gives it the Gemini settings and
    # roles/aiplatform.user, only when a model is configured.
    ai: bool = False

    @model_validator(mode="after")
    def _publishing_uses_the_bus(self) -> FunctionSpec:
        # Deployed, an undeclared backend is never built (segops.runtime): a publish would raise.
        if self.publishes and "bus" not in self.uses:
            raise ValueError(f"{self.name} publishes to {self.publishes} but does not declare `bus` in `uses`")
        return self

    @property
    def source(self) -> Path:
        return REPO_ROOT / "functions" / self.name / "main.py"


class Schedule(StrictModel):
    name: str
    cron: str
    topic: str
    data: dict[str, Any]


class Manifest(StrictModel):
    runtime: str
    topics: list[str]
    schedules: list[Schedule] = Field(default_factory=list)
    functions: list[FunctionSpec]

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def http_functions(self) -> list[FunctionSpec]:
        return [f for f in self.functions if isinstance(f.trigger, HttpTrigger)]

    def pubsub_functions(self) -> list[FunctionSpec]:
        return [f for f in self.functions if isinstance(f.trigger, PubSubTrigger)]


@cache
def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    return Manifest.model_validate_json(path.read_bytes())


def route_matches(pattern: str, path: str) -> bool:
    """URL-map semantics: exact paths, or a trailing `/*` that matches the prefix and below."""
    if pattern.endswith("/*"):
        return path.startswith(pattern[:-1]) or path == pattern[:-2]
    return path == pattern


def route_for(manifest: Manifest, path: str) -> FunctionSpec | None:
    """The function a load balancer sends `path` to: the longest matching pattern wins."""
    best: tuple[int, FunctionSpec] | None = None
    for spec in manifest.http_functions():
        assert isinstance(spec.trigger, HttpTrigger)
        for pattern in spec.trigger.routes:
            if route_matches(pattern, path):
                weight = len(pattern.rstrip("*"))
                if best is None or weight > best[0]:
                    best = (weight, spec)
    return best[1] if best else None
