# One service account per function, granted only what its manifest entry implies:
#   uses store    → object read/write on the control-plane bucket
#   uses objects  → object read/write on the exports bucket, and signing its own V4 URLs
#   uses bus      → read topic metadata (health check); `publishes` → publish on those topics only
#   secrets (and the ClickHouse password for `warehouse`) → access to those secrets only
#   tenant_secrets {kind: read}  → secretAccessor on this deployment's tenant secrets of that kind
#   tenant_secrets {kind: write} → create them (on the project: where Secret Manager checks it), and
#                                  add/list/destroy versions of and delete those of that kind only
#   uses cache    → nothing in IAM: Valkey is reached over the VPC connector
#   `ai` and a Gemini model is configured → roles/aiplatform.user (Vertex AI has no narrower
#   resource to grant on: the only project-level grant besides the build account's)
# Nothing else is granted at project level except to the build account, and the tenant-secret grants,
# each held to one kind of this deployment's tenant secrets by an IAM condition on the secret's name.
locals {
  account_ids = { for name, id in local.ids : name => trimsuffix(substr(id, 0, 30), "-") }

  bucket_grants = merge(
    { for name, f in local.functions : "${name}/control_plane" => { function = name, bucket = "control_plane" } if contains(f.uses, "store") },
    { for name, f in local.functions : "${name}/exports" => { function = name, bucket = "exports" } if contains(f.uses, "objects") },
  )
  bucket_names = {
    control_plane = google_storage_bucket.control_plane.name
    exports       = google_storage_bucket.exports.name
  }

  publish_grants = {
    for pair in flatten([
      for name, f in local.functions : [for topic in try(f.publishes, []) : { function = name, topic = topic }]
    ]) : "${pair.function}/${pair.topic}" => pair
  }

  topic_view_grants = {
    for pair in flatten([
      for name, f in local.functions : [for topic in local.topics : { function = name, topic = topic }] if contains(f.uses, "bus")
    ]) : "${pair.function}/${pair.topic}" => pair
  }

  secret_grants = {
    for pair in flatten([
      for name, secrets in local.function_secrets : [for secret in secrets : { function = name, secret = secret }]
    ]) : "${pair.function}/${pair.secret}" => pair
  }

  signers = { for name, f in local.functions : name => f if contains(f.uses, "objects") }

  tenant_secret_grants = {
    for pair in flatten([
      for name, f in local.functions : [
        for kind, access in try(f.tenant_secrets, {}) : { function = name, kind = kind, access = access }
      ]
    ]) : "${pair.function}/${pair.kind}" => pair
  }
  # A tenant secret's id is `<name_prefix>-t<tenant>-<kind>[-<id>]`; its versions are named below it.
  # `extract` finds the kind right after the tenant, whatever the tenant: one kind, every tenant,
  # nothing else in the project (other secrets do not start with `<name_prefix>-t<digits>-<kind>`).
  tenant_secret_conditions = {
    for kind in toset([for g in values(local.tenant_secret_grants) : g.kind]) : kind => join(" && ", [
      "resource.name.startsWith(\"projects/${data.google_project.this.number}/secrets/${var.name_prefix}-t\")",
      "resource.name.extract(\"/secrets/${var.name_prefix}-t{tenant}-${kind}\") != \"\"",
    ])
  }
}

resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = local.account_ids[each.key]
  display_name = "SegOps function ${each.key}"
  depends_on   = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "function" {
  for_each = local.bucket_grants
  bucket   = local.bucket_names[each.value.bucket]
  role     = "roles/storage.objectUser"
  member   = google_service_account.function[each.value.function].member
}

resource "google_pubsub_topic_iam_member" "publish" {
  for_each = local.publish_grants
  topic    = google_pubsub_topic.topic[each.value.topic].id
  role     = "roles/pubsub.publisher"
  member   = google_service_account.function[each.value.function].member
}

resource "google_pubsub_topic_iam_member" "view" {
  for_each = local.topic_view_grants
  topic    = google_pubsub_topic.topic[each.value.topic].id
  role     = "roles/pubsub.viewer"
  member   = google_service_account.function[each.value.function].member
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each  = local.secret_grants
  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.function[each.value.function].member
}

# V4 signed download URLs are signed through the IAM signBlob API as the function itself.
resource "google_service_account_iam_member" "self_signer" {
  for_each           = local.signers
  service_account_id = google_service_account.function[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.function[each.key].member
}

# Pub/Sub pushes to consumer functions authenticated as this account.
resource "google_service_account" "push" {
  account_id   = "${var.name_prefix}-push"
  display_name = "SegOps Pub/Sub push to functions"
  depends_on   = [google_project_service.apis]
}

resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_cloud_run_service_iam_member" "push_invoker" {
  for_each = local.pubsub_functions
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}

# Builds run as their own account instead of the default compute account.
resource "google_service_account" "build" {
  account_id   = "${var.name_prefix}-build"
  display_name = "SegOps function builds"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project_id
  role     = each.value
  member   = google_service_account.build.member
}

resource "google_storage_bucket_iam_member" "build_sources" {
  bucket = google_storage_bucket.sources.name
  role   = "roles/storage.objectViewer"
  member = google_service_account.build.member
}

# The AI segment builder's Gemini calls (only when var.gemini_model is set).
resource "google_project_iam_member" "vertex_ai" {
  for_each = local.ai_enabled ? local.ai_functions : toset([])
  project  = var.project_id
  role     = "roles/aiplatform.user"
  member   = google_service_account.function[each.key].member
}

resource "google_project_iam_member" "tenant_secret_read" {
  for_each = { for key, g in local.tenant_secret_grants : key => g if g.access == "read" }
  project  = var.project_id
  role     = "roles/secretmanager.secretAccessor"
  member   = google_service_account.function[each.value.function].member

  condition {
    title      = "${var.name_prefix}-${each.value.kind}-secrets"
    expression = local.tenant_secret_conditions[each.value.kind]
  }
}

# Writers replace and remove credentials; they never read them back.
resource "google_project_iam_custom_role" "tenant_secret_writer" {
  role_id = "${replace(var.name_prefix, "-", "_")}_tenant_secret_writer"
  title   = "SegOps tenant secret writer"
  permissions = [
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.versions.add",
    "secretmanager.versions.destroy",
    "secretmanager.versions.list",
  ]
}

resource "google_project_iam_member" "tenant_secret_write" {
  for_each = { for key, g in local.tenant_secret_grants : key => g if g.access == "write" }
  project  = var.project_id
  role     = google_project_iam_custom_role.tenant_secret_writer.id
  member   = google_service_account.function[each.value.function].member

  condition {
    title = "${var.name_prefix}-${each.value.kind}-secrets"
    # `secrets.create` is checked on the project (the new secret has no name to match yet).
    expression = "resource.type == \"cloudresourcemanager.googleapis.com/Project\" || (${local.tenant_secret_conditions[each.value.kind]})"
  }
}
