"""Offline checks of terraform/ (no terraform binary or provider can be downloaded here).

The Terraform reads functions/manifest.json itself; these checks make sure it does so for every
kind of manifest object (functions, routes, topics, schedules, secrets, backends), that nothing
the manifest owns is also written by hand, and that the security invariants hold. They run on
the real manifest; tests/support/manifest.full.json exercises the same manifest-side invariants
on the full planned function set (every trigger kind).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import typing
from pathlib import Path
from typing import Any

import pytest
from segops.bus.base import dead_letter_topic
from segops.config import Settings
from segops.manifest import (
    MANIFEST_PATH,
    Backend,
    FunctionSpec,
    Manifest,
    PubSubTrigger,
    RetryPolicy,
    load_manifest,
)

from infra import package
from infra import terraform as tf

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
FULL_MANIFEST = REPO / "tests" / "support" / "manifest.full.json"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
BASELINE = TERRAFORM / "checkov-baseline.json"


@pytest.fixture(scope="module")
def config() -> tf.TerraformConfig:
    return tf.load(TERRAFORM)


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return load_manifest()


def _expr(value: Any) -> str:
    assert isinstance(value, str), value
    return value


# --- the manifest is the only source -----------------------------------------------------------


def test_every_tf_file_parses(config: tf.TerraformConfig) -> None:
    assert {p.name for p in config.files} >= {"main.tf", "functions.tf", "pubsub.tf", "lb.tf", "iam.tf"}
    assert len(config.resources) > 30


def test_terraform_reads_the_real_manifest(config: tf.TerraformConfig) -> None:
    match = re.fullmatch(r'\$\{jsondecode\(file\("\$\{path\.module\}/([^"]+)"\)\)\}', _expr(config.locals["manifest"]))
    assert match, config.locals["manifest"]
    assert (TERRAFORM / match.group(1)).resolve() == MANIFEST_PATH.resolve()


@pytest.mark.parametrize(
    ("local", "source"),
    [
        ("functions", "local.manifest.functions"),
        ("http_functions", "local.functions"),
        ("pubsub_functions", "local.functions"),
        ("topics", "local.manifest.topics"),
        ("schedules", "local.manifest.schedules"),
        ("consumers", "local.pubsub_functions"),
    ],
)
def test_collections_are_derived_from_the_manifest(config: tf.TerraformConfig, local: str, source: str) -> None:
    assert source in _expr(config.locals[local])


# resource address → the manifest collection it must iterate
PER_MANIFEST_OBJECT = {
    "google_cloudfunctions2_function.function": "local.functions",
    "google_storage_bucket_object.source": "local.functions",
    "google_service_account.function": "local.functions",
    "google_compute_region_network_endpoint_group.function": "local.http_functions",
    "google_compute_backend_service.function": "local.http_functions",
    "google_cloud_run_service_iam_member.push_invoker": "local.pubsub_functions",
    "google_pubsub_topic.topic": "local.topics",
    "google_pubsub_topic.dead_letter": "local.topics",
    "google_pubsub_subscription.dead_letter": "local.topics",
    "google_pubsub_topic_iam_member.dead_letter_publisher": "local.topics",
    "google_pubsub_subscription.consumer": "local.consumers",
    "google_cloud_scheduler_job.schedule": "local.schedules",
    "google_secret_manager_secret.secret": "local.all_secrets",
}


@pytest.mark.parametrize(("address", "collection"), PER_MANIFEST_OBJECT.items())
def test_each_manifest_object_gets_its_resources(config: tf.TerraformConfig, address: str, collection: str) -> None:
    assert config.resource(address).body.get("for_each") == f"${{{collection}}}"


MANIFEST_OWNED_TYPES = {
    "google_cloudfunctions2_function",
    "google_storage_bucket_object",
    "google_compute_region_network_endpoint_group",
    "google_compute_backend_service",
    "google_pubsub_topic",
    "google_pubsub_subscription",
    "google_cloud_scheduler_job",
    "google_secret_manager_secret",
}


def test_no_function_topic_or_schedule_exists_outside_the_manifest(config: tf.TerraformConfig) -> None:
    # The other direction: every resource of a kind the manifest owns is one of the per-manifest
    # resources above, so Terraform cannot deploy a function, topic, subscription, route backend
    # or schedule that the manifest does not list.
    owned = [r.address for r in config.resources if r.type in MANIFEST_OWNED_TYPES]
    assert sorted(owned) == sorted(a for a in PER_MANIFEST_OBJECT if a.split(".")[0] in MANIFEST_OWNED_TYPES)


def test_every_reference_resolves(config: tf.TerraformConfig) -> None:
    # What `terraform validate` would catch first: references to undeclared locals, variables,
    # resources or data sources (python-hcl2 only checks syntax).
    data_sources = {
        f"{t}.{n}" for d in config.files.values() for e in d.get("data", []) for t, ns in e.items() for n in ns
    }
    resources = {r.address for r in config.resources}
    expressions = [s for d in config.files.values() for s in tf.strings(d) if "${" in s]
    assert expressions
    for text in expressions:
        for name in re.findall(r"(?<![\w.])local\.([A-Za-z_][A-Za-z0-9_]*)", text):
            assert name in config.locals, f"undefined local.{name} in {text}"
        for name in re.findall(r"(?<![\w.])var\.([A-Za-z_][A-Za-z0-9_]*)", text):
            assert name in config.variables, f"undeclared var.{name} in {text}"
        for address in re.findall(r"(?<![\w.])data\.([a-z0-9_]+\.[A-Za-z0-9_]+)", text):
            assert address in data_sources, f"undeclared data.{address} in {text}"
        for address in re.findall(r"(?<![\w.])(google_[a-z0-9_]+\.[A-Za-z_][A-Za-z0-9_]*)", text):
            assert address in resources, f"undeclared resource {address} in {text}"


def test_the_url_map_routes_every_manifest_route(config: tf.TerraformConfig) -> None:
    url_map = config.resource("google_compute_url_map.public")
    matcher = url_map.block("path_matcher")
    assert matcher is not None
    rule = matcher["dynamic"][0]["path_rule"]
    assert rule["for_each"] == "${local.http_functions}"
    content = rule["content"][0]
    assert content["paths"] == "${path_rule.value.trigger.routes}"
    assert content["service"] == "${google_compute_backend_service.function[path_rule.key].id}"
    assert url_map.block("host_rule") == {"hosts": ["*"], "path_matcher": matcher["name"]}
    # AND every path no function claims (the manifest's `api` claims /api/*) is the console's bucket
    console = "${google_compute_backend_bucket.console.id}"
    assert url_map.body["default_service"] == matcher["default_service"] == console
    # ONE external load balancer
    assert len(config.of_type("google_compute_url_map")) == 2  # the API map and the HTTP→HTTPS redirect
    assert len(config.of_type("google_compute_target_https_proxy")) == 1


def _literals(config: tf.TerraformConfig) -> set[str]:
    """String literals (not expressions) anywhere in the Terraform."""
    return {s for r in config.files.values() for s in tf.strings(r) if "${" not in s}


@pytest.mark.parametrize("manifest_path", [MANIFEST_PATH, FULL_MANIFEST], ids=["real", "full"])
def test_nothing_the_manifest_owns_is_written_by_hand(config: tf.TerraformConfig, manifest_path: Path) -> None:
    # A hand-written function name, topic, schedule or route would drift from the manifest.
    owned = load_manifest(manifest_path)
    names = {f.name for f in owned.functions} | {f.name.replace("_", "-") for f in owned.functions}
    names |= set(owned.topics) | {dead_letter_topic(t) for t in owned.topics} | {s.name for s in owned.schedules}
    everything = {s for r in config.files.values() for s in tf.strings(r)}
    assert not (_literals(config) & names)
    assert not [s for s in everything if "/api/" in s]


def test_every_function_setting_is_consumed(config: tf.TerraformConfig) -> None:
    # Each field of a manifest entry must reach Terraform (`name` is the map key).
    text = " ".join(s for r in config.files.values() for s in tf.strings(r))
    for field in set(FunctionSpec.model_fields) - {"name"}:
        assert re.search(rf"\b(each\.value|f|path_rule\.value)\.{field}\b", text), f"manifest field {field!r} unused"
    for field in set(PubSubTrigger.model_fields) - {"type"}:
        assert f"trigger.{field}" in text, f"pubsub trigger field {field!r} unused"


def test_function_resource_maps_the_manifest_settings(config: tf.TerraformConfig) -> None:
    function = config.resource("google_cloudfunctions2_function.function")
    build = function.block("build_config")
    service = function.block("service_config")
    assert build is not None and service is not None
    assert build["runtime"] == "${local.manifest.runtime}"
    assert build["entry_point"] == "${each.value.entry_point}"
    assert service["available_memory"] == "${each.value.memory_mb}M"
    assert service["timeout_seconds"] == "${each.value.timeout_seconds}"
    assert "each.value.max_instances" in service["max_instance_count"]
    assert "each.value.min_instances" in service["min_instance_count"]
    assert "each.value.concurrency" in service["max_instance_request_concurrency"]
    assert service["environment_variables"] == "${local.function_env[each.key]}"
    assert service["service_account_email"] == "${google_service_account.function[each.key].email}"
    assert 'contains(each.value.uses, "cache")' in service["vpc_connector"]
    assert "ALLOW_INTERNAL_AND_GCLB" in service["ingress_settings"]
    secrets = service["dynamic"][0]["secret_environment_variables"]
    assert secrets["for_each"] == "${local.function_secrets[each.key]}"


# --- settings: env and secrets -------------------------------------------------------------------


def test_each_backend_gets_its_production_settings(config: tf.TerraformConfig) -> None:
    backend_env = config.locals["backend_env"]
    assert set(backend_env) == set(typing.get_args(Backend))
    for backend, (kind, _) in package.PRODUCTION_BACKENDS.items():
        assert backend_env[backend][f"SEGOPS_{backend.upper()}"] == kind
        assert all(key.lower().removeprefix("segops_") in Settings.model_fields for key in backend_env[backend])
    common = config.locals["common_env"]
    assert common["SEGOPS_ENVIRONMENT"] == "production"
    assert all(key.lower().removeprefix("segops_") in Settings.model_fields for key in common)
    env = _expr(config.locals["function_env"])
    assert "SEGOPS_USES = jsonencode(f.uses)" in env
    assert "local.backend_env[backend]" in env
    assert "for backend in f.uses" in env
    # a deployed consumer's idea of "last attempt" is its subscription's max delivery attempts (the
    # zip holds no manifest: segops.bus.dead_letters.last_attempt reads this setting in production)
    assert "SEGOPS_BUS_MAX_ATTEMPTS = tostring(try(f.trigger.max_delivery_attempts, 5))" in env
    assert "bus_max_attempts" in Settings.model_fields


@pytest.mark.parametrize("manifest_path", [MANIFEST_PATH, FULL_MANIFEST], ids=["real", "full"])
def test_secrets_and_env_reach_real_settings(manifest_path: Path) -> None:
    # Secret `jwt-secret` is exposed as SEGOPS_JWT_SECRET: it must be a setting the code reads.
    for spec in load_manifest(manifest_path).functions:
        for secret in [*spec.secrets, *(["clickhouse-password"] if "warehouse" in spec.uses else [])]:
            assert re.fullmatch(r"[A-Za-z0-9_-]{1,200}", secret), secret
            if manifest_path == MANIFEST_PATH:
                assert secret.replace("-", "_") in Settings.model_fields, f"{spec.name}: no setting for {secret}"
        for key in spec.env:
            assert key.startswith("SEGOPS_") and key.lower().removeprefix("segops_") in Settings.model_fields


# --- manifest invariants Terraform relies on --------------------------------------------------------


@pytest.mark.parametrize("manifest_path", [MANIFEST_PATH, FULL_MANIFEST], ids=["real", "full"])
def test_triggers_publishes_and_schedules_name_declared_topics(manifest_path: Path) -> None:
    owned = load_manifest(manifest_path)
    topics = set(owned.topics)
    for spec in owned.functions:
        if isinstance(spec.trigger, PubSubTrigger):
            assert spec.trigger.topic in topics, spec.name
            assert spec.trigger.min_backoff_seconds <= spec.trigger.max_backoff_seconds, spec.name
        assert set(spec.publishes) <= topics, spec.name
        if spec.publishes:
            assert "bus" in spec.uses, f"{spec.name} publishes without using the bus"
    assert {s.topic for s in owned.schedules} <= topics
    names = [f.name for f in owned.functions]
    assert len(names) == len(set(names))
    assert len(owned.http_functions()) >= 1  # the URL map needs a default service


def test_every_real_function_has_its_entry_point(manifest: Manifest) -> None:
    for spec in manifest.functions:
        source = spec.source.read_text()
        assert re.search(rf"^def {re.escape(spec.entry_point)}\(", source, re.M), spec.name
        decorator = "http" if spec.trigger.type == "http" else "cloud_event"
        assert f"@functions_framework.{decorator}" in source, spec.name


# --- security -------------------------------------------------------------------------------------


def _members_and_roles(config: tf.TerraformConfig) -> list[tuple[str, str, str]]:
    return [
        (r.address, str(r.body.get("role", "")), str(r.body.get("member", "")))
        for r in config.resources
        if "_iam_" in r.type
    ]


def test_no_basic_roles_and_no_authoritative_iam(config: tf.TerraformConfig) -> None:
    text = " ".join(s for r in config.files.values() for s in tf.strings(r))
    assert "roles/owner" not in text and "roles/editor" not in text
    assert not [r.address for r in config.resources if r.type.endswith(("_iam_binding", "_iam_policy"))]


TENANT_SECRET_GRANTS = {
    "google_project_iam_member.tenant_secret_read": "read",
    "google_project_iam_member.tenant_secret_write": "write",
}


def test_tenant_secret_grants_are_conditioned_on_the_kind_and_the_deployment(config: tf.TerraformConfig) -> None:
    conditions = _expr(config.locals["tenant_secret_conditions"])
    assert "/secrets/${var.name_prefix}-t" in conditions
    assert "/secrets/${var.name_prefix}-t{tenant}-${kind}" in conditions
    assert "data.google_project.this.number" in conditions
    assert "f.tenant_secrets" in config.locals["tenant_secret_grants"]
    read = config.resource("google_project_iam_member.tenant_secret_read")
    assert read.body["role"] == "roles/secretmanager.secretAccessor"
    writer = config.resource("google_project_iam_custom_role.tenant_secret_writer")
    assert "secretmanager.versions.access" not in writer.body["permissions"]  # writers never read back
    env = _expr(config.locals["function_env"])
    assert "length(try(f.tenant_secrets, {})) > 0 ? local.tenant_secrets_env" in env
    assert all(k.lower().removeprefix("segops_") in Settings.model_fields for k in config.locals["tenant_secrets_env"])


def test_project_level_grants_only_to_the_build_account(config: tf.TerraformConfig) -> None:
    project_grants = config.of_type("google_project_iam_member")
    assert project_grants, "expected the build account's grants"
    for grant in project_grants:
        if grant.address == "google_project_iam_member.vertex_ai":
            # the one exception: Vertex AI for `ai` functions, only when a Gemini model is configured
            assert grant.body["role"] == "roles/aiplatform.user"
            assert grant.body["for_each"] == "${local.ai_enabled ? local.ai_functions : toset([])}"
            assert grant.body["member"] == "${google_service_account.function[each.key].member}"
            continue
        if grant.address in TENANT_SECRET_GRANTS:
            # tenant secrets: each grant held to one kind of this deployment's secrets by its name
            access = TENANT_SECRET_GRANTS[grant.address]
            wanted = f'for key, g in local.tenant_secret_grants : key => g if g.access == "{access}"'
            assert grant.body["for_each"] == "${{" + wanted + "}}"
            condition = grant.block("condition")
            assert condition is not None
            assert "local.tenant_secret_conditions[each.value.kind]" in condition["expression"]
            continue
        assert grant.body["member"] == "${google_service_account.build.member}"
        roles = grant.body["for_each"]
        assert "admin" not in roles.lower()


def test_public_access_is_only_the_lb_facing_invoker(config: tf.TerraformConfig) -> None:
    anyone = {"allUsers", "allAuthenticatedUsers"}
    public = [(address, role) for address, role, member in _members_and_roles(config) if member in anyone]
    assert public == [("google_cloud_run_service_iam_member.public_invoker", "roles/run.invoker")]
    invoker = config.resource("google_cloud_run_service_iam_member.public_invoker")
    assert "local.http_functions" in invoker.body["for_each"] and "f.public" in invoker.body["for_each"]


def test_buckets_are_private_and_configured(config: tf.TerraformConfig) -> None:
    buckets = config.of_type("google_storage_bucket")
    assert {b.name for b in buckets} >= {"control_plane", "exports", "sources"}
    for bucket in buckets:
        assert bucket.body["uniform_bucket_level_access"] is True, bucket.address
        assert bucket.body["public_access_prevention"] == "enforced", bucket.address
    for grant in config.of_type("google_storage_bucket_iam_member"):
        assert not grant.body["member"].startswith(("allUsers", "allAuthenticatedUsers"))
    control = config.resource("google_storage_bucket.control_plane")
    assert control.block("versioning") == {"enabled": True}
    # the console bucket: SPA fallback, behind a CDN-enabled backend bucket, readable only by CDN fill
    console = config.resource("google_storage_bucket.console")
    assert console.block("website") == {"main_page_suffix": "index.html", "not_found_page": "index.html"}
    backend = config.resource("google_compute_backend_bucket.console")
    assert backend.body["enable_cdn"] is True and backend.body["bucket_name"] == "${google_storage_bucket.console.name}"
    fill = config.resource("google_storage_bucket_iam_member.console_cdn_fill")
    assert (fill.body["role"], fill.body["member"]) == (
        "roles/storage.objectViewer",
        "serviceAccount:service-${data.google_project.this.number}@cloud-cdn-fill.iam.gserviceaccount.com",
    )
    exports = config.resource("google_storage_bucket.exports")
    rules = exports.body["lifecycle_rule"]
    assert any(r["action"][0]["type"] == "Delete" and "age" in r["condition"][0] for r in rules)
    # a versioned bucket turns a deleted object into an old generation: one rule must reclaim those by age
    # (`num_newer_versions` never does: a deleted document's last generation has no newer one)
    for bucket in buckets:
        if bucket.body.get("versioning", [{}])[0].get("enabled"):
            conditions = [r["condition"][0] for r in bucket.body.get("lifecycle_rule", []) if "condition" in r]
            assert any("days_since_noncurrent_time" in c for c in conditions), bucket.address
    # Cloud Storage delivers the access logs every bucket names as its group, which needs to create objects
    writer = config.resource("google_storage_bucket_iam_member.access_logs_writer")
    assert (writer.body["role"], writer.body["member"]) == (
        "roles/storage.objectCreator",
        "group:cloud-storage-analytics@google.com",
    )


def test_the_example_variables_set_no_secret() -> None:
    # terraform.tfvars wins over TF_VAR_*: a password in the copied example would replace the exported one
    example = (REPO / "terraform" / "terraform.tfvars.example").read_text()
    active = [line for line in example.splitlines() if line.split("#")[0].strip()]
    assert not [line for line in active if "password" in line or "secret" in line]


def test_the_cache_evicts_least_recently_used_keys_when_full(config: tf.TerraformConfig) -> None:
    # every key the stack writes has a TTL (tests/integration/test_cache_keys.py): all are evictable
    cache = config.resource("google_memorystore_instance.cache")
    assert cache.body["engine_configs"] == {"maxmemory-policy": "volatile-lru"}


def test_grants_follow_uses_and_publishes(config: tf.TerraformConfig) -> None:
    # Publishing is granted per topic named in `publishes`, storage per bucket per `uses`.
    assert "f.publishes" in config.locals["publish_grants"]
    assert 'contains(f.uses, "store")' in config.locals["bucket_grants"]
    assert 'contains(f.uses, "objects")' in config.locals["bucket_grants"]
    assert 'contains(f.uses, "warehouse")' in config.locals["function_secrets"]
    publish = config.resource("google_pubsub_topic_iam_member.publish")
    assert publish.body["role"] == "roles/pubsub.publisher" and publish.body["for_each"] == "${local.publish_grants}"
    access = config.resource("google_secret_manager_secret_iam_member.access")
    assert access.body["role"] == "roles/secretmanager.secretAccessor"


# --- Pub/Sub -------------------------------------------------------------------------------------


def test_every_topic_has_a_dead_letter_topic_and_every_subscription_a_policy(config: tf.TerraformConfig) -> None:
    dead = config.resource("google_pubsub_topic.dead_letter")
    assert dead.body["name"] == "${each.value}-dead-letter"
    assert dead_letter_topic("x") == "x-dead-letter"
    for subscription in config.of_type("google_pubsub_subscription"):
        if "google_pubsub_topic.dead_letter" in subscription.body["topic"]:
            continue  # the parking subscription of a dead-letter topic itself
        policy = subscription.block("dead_letter_policy")
        assert policy is not None, subscription.address
        assert "google_pubsub_topic.dead_letter" in policy["dead_letter_topic"]
        assert policy["max_delivery_attempts"] == "${each.value.max_delivery_attempts}"
        retry = subscription.block("retry_policy")
        assert retry == {
            "minimum_backoff": "${each.value.min_backoff_seconds}s",
            "maximum_backoff": "${each.value.max_backoff_seconds}s",
        }
    consumers = _expr(config.locals["consumers"])
    for field in ("max_delivery_attempts", "min_backoff_seconds", "max_backoff_seconds", "topic"):
        assert f"f.trigger.{field}" in consumers
    # unacknowledged messages outlive the manifest's retry horizon
    assert "message_retention_seconds = ceil(f.trigger.retry_horizon_hours * 3600) + 86400" in consumers
    consumer = config.resource("google_pubsub_subscription.consumer")
    assert consumer.body["message_retention_duration"] == "${each.value.message_retention_seconds}s"


@pytest.mark.parametrize("manifest_path", [MANIFEST_PATH, FULL_MANIFEST], ids=["real", "full"])
def test_retry_policies_keep_their_declared_horizon(manifest_path: Path) -> None:
    for spec in load_manifest(manifest_path).pubsub_functions():
        assert isinstance(spec.trigger, PubSubTrigger)
        retry = spec.trigger.retry
        assert retry.horizon_seconds() >= spec.trigger.retry_horizon_hours * 3600, spec.name
        # Pub/Sub keeps unacknowledged messages at most 31 days
        assert math.ceil(spec.trigger.retry_horizon_hours * 3600) + 86400 <= 31 * 86400


def test_real_consumers_ride_out_a_multi_hour_warehouse_outage(manifest: Manifest) -> None:
    for spec in manifest.pubsub_functions():
        assert isinstance(spec.trigger, PubSubTrigger)
        if "warehouse" in spec.uses:
            assert spec.trigger.retry_horizon_hours >= 6, spec.name
        # its last attempt archives the message in the control-plane store (segops.bus.dead_letters)
        assert "store" in spec.uses, spec.name


def test_a_horizon_the_attempts_do_not_cover_is_refused() -> None:
    # 5 attempts from 10 s: 10 + 20 + 40 + 80 s of waiting, not an hour
    with pytest.raises(ValueError, match="retry_horizon_hours"):
        PubSubTrigger.model_validate({"type": "pubsub", "topic": "t", "retry_horizon_hours": 1})
    assert PubSubTrigger.model_validate({"type": "pubsub", "topic": "t", "retry_horizon_hours": 0.04}).retry == (
        RetryPolicy(5, 10, 600)
    )


def test_push_delivery_is_authenticated_to_the_consumer(config: tf.TerraformConfig) -> None:
    push = config.resource("google_pubsub_subscription.consumer").block("push_config")
    assert push is not None
    assert push["push_endpoint"].endswith("/projects/${var.project_id}/topics/${each.value.topic}")
    assert push["oidc_token"][0]["service_account_email"] == "${google_service_account.push.email}"
    invoker = config.resource("google_cloud_run_service_iam_member.push_invoker")
    assert invoker.body["member"] == "${google_service_account.push.member}"


def test_schedules_publish_their_manifest_payload(config: tf.TerraformConfig) -> None:
    job = config.resource("google_cloud_scheduler_job.schedule")
    target = job.block("pubsub_target")
    assert target == {
        "topic_name": "${google_pubsub_topic.topic[each.value.topic].id}",
        "data": "${base64encode(jsonencode(each.value.data))}",
    }
    assert job.body["schedule"] == "${each.value.cron}"


# --- formatting (what `terraform fmt -check` enforces, as far as it can be checked without it) ----------

_ATTRIBUTE = re.compile(r"^(\s*)([A-Za-z0-9_\"-]+)(\s*)= ")


def _pop(stack: list[int], closers: int) -> None:
    while closers and stack:
        taken = min(closers, stack[-1])
        stack[-1] -= taken
        closers -= taken
        if stack[-1] == 0:
            stack.pop()


def _fmt_problems(path: Path) -> list[str]:
    """Indentation as hclwrite computes it (one level per line that leaves brackets open), aligned
    `=` in runs of single-line attributes, no tabs or trailing blanks, one final newline."""
    problems: list[str] = []
    lines = path.read_text().split("\n")
    if lines[-1] != "" or (len(lines) > 1 and lines[-2] == ""):
        problems.append(f"{path.name}: must end with exactly one newline")
    open_lines: list[int] = []  # per indenting line, how many of its brackets are still open
    group: list[tuple[int, re.Match[str]]] = []

    def close_group() -> None:
        if len(group) > 1:
            widest = max(len(m.group(2)) for _, m in group)
            for number, m in group:
                if len(m.group(2)) + len(m.group(3)) != widest + 1:
                    problems.append(f"{path.name}:{number}: `=` not aligned with its neighbours")
        group.clear()

    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if "\t" in line or line != line.rstrip():
            problems.append(f"{path.name}:{number}: tab or trailing whitespace")
        code = "" if stripped.startswith("#") else re.sub(r'"(?:\\.|[^"\\])*"', '""', stripped).split(" #")[0]
        leading = len(code) - len(code.lstrip("}])"))
        level = list(open_lines)
        _pop(level, leading)
        if stripped and len(line) - len(line.lstrip(" ")) != 2 * len(level):
            problems.append(f"{path.name}:{number}: indent should be {2 * len(level)} spaces")
        _pop(open_lines, leading)
        net = sum(code.count(c) for c in "{[(") - sum(code.count(c) for c in "}])") + leading
        if net > 0:
            open_lines.append(net)
        else:
            _pop(open_lines, -net)
        match = _ATTRIBUTE.match(line)
        single_line = match is not None and net == 0
        if not (single_line and match and group and group[0][1].group(1) == match.group(1)):
            close_group()
        if single_line and match:
            group.append((number, match))
    close_group()
    return problems


def test_terraform_files_are_canonically_formatted() -> None:
    files = sorted(TERRAFORM.rglob("*.tf"))
    assert files
    assert [p for f in files for p in _fmt_problems(f)] == []


def test_the_format_check_catches_misalignment(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tf"
    bad.write_text('resource "a" "b" {\n  name = "x"\n  location = "y"\n    extra = 1\n}\n')
    problems = _fmt_problems(bad)
    assert any("not aligned" in p for p in problems)
    assert any("indent" in p for p in problems)


# --- checkov -----------------------------------------------------------------------------------------


def _checkov_findings() -> set[tuple[str, str]]:
    if not CHECKOV.exists():
        pytest.fail(f"checkov is not installed at {CHECKOV}: run `make checkov` (make test does it)")
    result = subprocess.run(
        [
            *(str(CHECKOV), "-d", str(TERRAFORM), "--framework", "terraform", "--compact", "--quiet"),
            *("--skip-download", "--soft-fail", "--output", "json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports and all(r["summary"]["parsing_errors"] == 0 for r in reports), result.stderr[-2000:]
    assert sum(r["summary"]["passed"] for r in reports) > 20  # checkov really looked at the resources
    return {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]}


def test_checkov_findings_are_exactly_the_documented_baseline() -> None:
    baseline = json.loads(BASELINE.read_text())["accepted"]
    for entry in baseline:
        assert len(entry["reason"]) > 40, f"{entry['check_id']} needs a real reason"
    accepted = {(e["check_id"], e["resource"]) for e in baseline}
    findings = _checkov_findings()
    assert findings - accepted == set(), "new checkov findings: fix them or document them in checkov-baseline.json"
    assert accepted - findings == set(), "baseline entries that no longer fire: remove them"


def test_terraform_fmt_check_with_the_real_binary_where_installed() -> None:
    # GIVEN a terraform binary (this build image ships Terraform 1.11 at /usr/local/bin; no registry
    # offers it, so another machine may lack it — the formatting checks above cover fmt's rules then)
    binary = shutil.which("terraform")
    if binary is None:
        pytest.skip("no terraform binary on PATH: canonical formatting is checked by the tests above")
    # WHEN terraform itself checks the formatting (no providers needed, unlike validate)
    result = subprocess.run(
        [binary, "fmt", "-check", "-recursive", "-diff"],
        cwd=TERRAFORM,
        env={**os.environ, "TF_CLI_CONFIG_FILE": "", "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # THEN every file is already canonical
    assert result.returncode == 0, result.stdout + result.stderr
