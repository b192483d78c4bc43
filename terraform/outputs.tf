output "load_balancer_ip" {
  description = "Point the DNS A records of var.domains here."
  value       = google_compute_global_address.lb.address
}

output "api_base_url" {
  description = "Public base URL of the API."
  value       = "https://${var.domains[0]}"
}

output "function_uris" {
  description = "Direct (internal/LB-only) Cloud Run URIs of the functions."
  value       = { for name, f in google_cloudfunctions2_function.function : name => f.service_config[0].uri }
}

output "secrets" {
  description = "Secret Manager secret ids to add versions to (see docs/deploy.md, rotating secrets)."
  value       = { for name, s in google_secret_manager_secret.secret : name => s.secret_id }
}

output "buckets" {
  description = "Control-plane, exports and function-source buckets."
  value = {
    control_plane = google_storage_bucket.control_plane.name
    exports       = google_storage_bucket.exports.name
    sources       = google_storage_bucket.sources.name
    console       = google_storage_bucket.console.name
  }
}
