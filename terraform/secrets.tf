# One Secret Manager secret per secret named in the manifest, plus the ClickHouse password.
# Values: the ClickHouse password comes from its variable; the others from `secret_values` or,
# preferably, `gcloud secrets versions add` (docs/deploy.md), which keeps them out of the state.
resource "google_secret_manager_secret" "secret" {
  for_each  = local.all_secrets
  secret_id = "${var.name_prefix}-${each.value}"

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "clickhouse_password" {
  secret      = google_secret_manager_secret.secret["clickhouse-password"].id
  secret_data = var.clickhouse_password
}

resource "google_secret_manager_secret_version" "initial" {
  for_each    = nonsensitive(toset([for name in keys(var.secret_values) : name if contains(local.manifest_secrets, name)]))
  secret      = google_secret_manager_secret.secret[each.value].id
  secret_data = var.secret_values[each.value]
}
