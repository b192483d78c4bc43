# Everything per function, per topic, per route and per schedule is derived from the function
# manifest, the same file the dev server and `make package` read. Nothing here lists functions.
locals {
  manifest = jsondecode(file("${path.module}/../functions/manifest.json"))

  functions        = { for f in local.manifest.functions : f.name => f }
  http_functions   = { for name, f in local.functions : name => f if f.trigger.type == "http" }
  pubsub_functions = { for name, f in local.functions : name => f if f.trigger.type == "pubsub" }
  topics           = toset(local.manifest.topics)
  schedules        = { for s in local.manifest.schedules : s.name => s }

  # Resource names allow dashes, manifest names use underscores.
  ids = { for name in keys(local.functions) : name => "${var.name_prefix}-${replace(name, "_", "-")}" }

  # Each secret a function lists, plus the ClickHouse password for warehouse users. The env var
  # follows the settings convention: secret `jwt-secret` → SEGOPS_JWT_SECRET.
  function_secrets = {
    for name, f in local.functions : name => toset(concat(
      try(f.secrets, []),
      contains(f.uses, "warehouse") ? ["clickhouse-password"] : [],
    ))
  }
  manifest_secrets = toset(flatten([for f in local.functions : try(f.secrets, [])]))
  all_secrets      = setunion(local.manifest_secrets, ["clickhouse-password"])

  # Production settings of each backend a function `uses`; SEGOPS_USES makes the runtime build
  # only those (segops.runtime.build_runtime), so a function connects to nothing else.
  backend_env = {
    warehouse = {
      SEGOPS_WAREHOUSE           = "clickhouse"
      SEGOPS_CLICKHOUSE_URL      = var.clickhouse_url
      SEGOPS_CLICKHOUSE_USER     = var.clickhouse_user
      SEGOPS_CLICKHOUSE_DATABASE = var.clickhouse_database
    }
    bus = {
      SEGOPS_BUS = "pubsub"
    }
    cache = {
      SEGOPS_CACHE     = "redis"
      SEGOPS_REDIS_URL = "redis://${local.valkey_host}:${local.valkey_port}/0"
    }
    store = {
      SEGOPS_STORE        = "gcs"
      SEGOPS_STORE_BUCKET = google_storage_bucket.control_plane.name
    }
    objects = {
      SEGOPS_OBJECTS               = "gcs"
      SEGOPS_OBJECTS_BUCKET        = google_storage_bucket.exports.name
      SEGOPS_EXPORT_RETENTION_DAYS = tostring(var.export_retention_days)
    }
  }

  # The AI segment builder drafts with Gemini only when a model is configured, in the functions
  # whose manifest entry says `ai`.
  ai_enabled   = var.gemini_model != ""
  ai_functions = toset([for name, f in local.functions : name if try(f.ai, false)])
  ai_env = local.ai_enabled ? {
    SEGOPS_AI_PROVIDER     = "gemini"
    SEGOPS_GEMINI_PROJECT  = var.project_id
    SEGOPS_GEMINI_LOCATION = var.gemini_location
    SEGOPS_GEMINI_MODEL    = var.gemini_model
  } : {}

  common_env = {
    SEGOPS_ENVIRONMENT = "production"
    SEGOPS_GCP_PROJECT = var.project_id
    SEGOPS_PUBLIC_URL  = "https://${var.domains[0]}"
    SEGOPS_LOG_LEVEL   = var.log_level
    # The HTTPS load balancer appends "<client>, <load balancer>" to X-Forwarded-For: the client
    # address used by login/signup throttling is the second entry from the right.
    SEGOPS_TRUSTED_PROXY_HOPS = "2"
  }

  # Functions that handle tenant secrets (manifest `tenant_secrets`) keep them in Secret Manager,
  # one secret each, named `<name_prefix>-t<tenant>-<kind>[-<id>]` (segops.tenant_secrets).
  tenant_secrets_env = {
    SEGOPS_TENANT_SECRETS = "secret_manager"
    SEGOPS_SECRET_PREFIX  = var.name_prefix
  }

  # Functions that send account mail hold the smtp-password secret.
  mail_env = {
    SEGOPS_MAILER        = "smtp"
    SEGOPS_SMTP_HOST     = var.smtp_host
    SEGOPS_SMTP_PORT     = tostring(var.smtp_port)
    SEGOPS_SMTP_USERNAME = var.smtp_username
    SEGOPS_MAIL_FROM     = var.mail_from
  }

  function_env = {
    for name, f in local.functions : name => merge(
      local.common_env,
      { SEGOPS_USES = jsonencode(f.uses) },
      # Sizes the password-hashing cap (segops.config.Settings.password_hash_slots) to the function.
      { SEGOPS_FUNCTION_MEMORY_MB = tostring(f.memory_mb) },
      # Bounds a hung ClickHouse server's wait below the function's own timeout (segops.runtime).
      { SEGOPS_FUNCTION_TIMEOUT_SECONDS = tostring(f.timeout_seconds) },
      contains(try(f.secrets, []), "smtp-password") ? local.mail_env : {},
      length(try(f.tenant_secrets, {})) > 0 ? local.tenant_secrets_env : {},
      # functions-framework serves THREADS requests at once (default 4 per CPU): match the
      # instance's request concurrency, or the event writer's deliveries could never share a flush.
      { THREADS = tostring(try(f.concurrency, 1)) },
      merge([for backend in f.uses : local.backend_env[backend]]...),
      # A consumer archives a message for replay on the last attempt before Pub/Sub dead-letters it.
      f.trigger.type == "pubsub" ? { SEGOPS_BUS_MAX_ATTEMPTS = tostring(try(f.trigger.max_delivery_attempts, 5)) } : {},
      contains(local.ai_functions, name) ? local.ai_env : {},
      try(f.env, {}),
    )
  }
}

data "google_project" "this" {}

resource "google_project_service" "apis" {
  for_each = toset([
    "cloudfunctions.googleapis.com",
    "cloudbuild.googleapis.com",
    "run.googleapis.com",
    "artifactregistry.googleapis.com",
    "pubsub.googleapis.com",
    "cloudscheduler.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "compute.googleapis.com",
    "vpcaccess.googleapis.com",
    "memorystore.googleapis.com",
    "networkconnectivity.googleapis.com",
    "serviceconsumermanagement.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
  ])
  service            = each.value
  disable_on_destroy = false
}

# Vertex AI, for the AI segment builder's Gemini provider (only when a model is configured).
resource "google_project_service" "vertex_ai" {
  count              = local.ai_enabled ? 1 : 0
  service            = "aiplatform.googleapis.com"
  disable_on_destroy = false
}
