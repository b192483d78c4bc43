# One Cloud Function (gen2) per manifest entry, from the zip `make package` built for it. The
# object name carries the zip's hash, so only functions whose zip changed are redeployed.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  name     = "functions/${each.key}/${filesha256("${path.module}/${var.build_dir}/${each.key}.zip")}.zip"
  bucket   = google_storage_bucket.sources.name
  source   = "${path.module}/${var.build_dir}/${each.key}.zip"
}

resource "google_cloudfunctions2_function" "function" {
  for_each    = local.functions
  name        = local.ids[each.key]
  location    = var.region
  description = each.value.description

  build_config {
    runtime         = local.manifest.runtime
    entry_point     = each.value.entry_point
    service_account = google_service_account.build.id

    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = "${each.value.memory_mb}M"
    available_cpu                    = tostring(try(each.value.cpu, 1))
    timeout_seconds                  = each.value.timeout_seconds
    min_instance_count               = try(each.value.min_instances, 0)
    max_instance_count               = try(each.value.max_instances, 10)
    max_instance_request_concurrency = try(each.value.concurrency, 1)
    service_account_email            = google_service_account.function[each.key].email
    all_traffic_on_latest_revision   = true
    # HTTP functions are reached only through the load balancer; consumers only by Pub/Sub push.
    ingress_settings              = each.value.trigger.type == "http" ? "ALLOW_INTERNAL_AND_GCLB" : "ALLOW_INTERNAL_ONLY"
    vpc_connector                 = contains(each.value.uses, "cache") ? google_vpc_access_connector.functions.id : null
    vpc_connector_egress_settings = contains(each.value.uses, "cache") ? "PRIVATE_RANGES_ONLY" : null
    environment_variables         = local.function_env[each.key]

    dynamic "secret_environment_variables" {
      for_each = local.function_secrets[each.key]
      content {
        key        = "SEGOPS_${upper(replace(secret_environment_variables.value, "-", "_"))}"
        project_id = var.project_id
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.access,
    google_secret_manager_secret_version.clickhouse_password,
    google_storage_bucket_iam_member.build_sources,
    google_project_iam_member.build,
  ]
}

# The load balancer does not authenticate callers to Cloud Run; the functions authenticate every
# request themselves (JWT, API key or webhook HMAC) and accept traffic only via the load balancer.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  for_each = { for name, f in local.http_functions : name => f if try(f.public, false) }
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
