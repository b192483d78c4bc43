# One external HTTPS load balancer. Its URL map is generated from the manifest's HTTP routes
# (load-balancer path patterns: exact paths or a trailing /*; the longest match wins, as in
# segops.manifest.route_for). Each HTTP function is a serverless NEG behind its own backend.
# The `api` function claims every other /api/ path (its JSON 404); all remaining paths are the web
# console's bucket (console.tf), on the same origin.

resource "google_compute_global_address" "lb" {
  name       = "${var.name_prefix}-lb"
  depends_on = [google_project_service.apis]
}

resource "google_compute_managed_ssl_certificate" "lb" {
  name = "${var.name_prefix}-cert"

  managed {
    domains = var.domains
  }
}

resource "google_compute_ssl_policy" "lb" {
  name            = "${var.name_prefix}-tls"
  profile         = "MODERN"
  min_tls_version = "TLS_1_2"
}

resource "google_compute_security_policy" "edge" {
  name = "${var.name_prefix}-edge"

  rule {
    action      = "deny(403)"
    priority    = 1000
    description = "Log4j CVE-2021-44228 probes"
    match {
      expr {
        expression = "evaluatePreconfiguredExpr('cve-canary')"
      }
    }
  }

  rule {
    action      = "allow"
    priority    = 2147483647
    description = "default: the functions authenticate every request"
    match {
      versioned_expr = "SRC_IPS_V1"
      config {
        src_ip_ranges = ["*"]
      }
    }
  }
}

resource "google_compute_region_network_endpoint_group" "function" {
  for_each              = local.http_functions
  name                  = local.ids[each.key]
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_function {
    function = google_cloudfunctions2_function.function[each.key].name
  }
}

resource "google_compute_backend_service" "function" {
  for_each              = local.http_functions
  name                  = local.ids[each.key]
  protocol              = "HTTPS"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  security_policy       = google_compute_security_policy.edge.id

  backend {
    group = google_compute_region_network_endpoint_group.function[each.key].id
  }

  log_config {
    enable      = true
    sample_rate = 1.0
  }
}

resource "google_compute_url_map" "public" {
  name            = "${var.name_prefix}-api"
  default_service = google_compute_backend_bucket.console.id

  host_rule {
    hosts        = ["*"]
    path_matcher = "functions"
  }

  path_matcher {
    name            = "functions"
    default_service = google_compute_backend_bucket.console.id

    dynamic "path_rule" {
      for_each = local.http_functions
      content {
        paths   = path_rule.value.trigger.routes
        service = google_compute_backend_service.function[path_rule.key].id
      }
    }
  }
}

resource "google_compute_target_https_proxy" "public" {
  name             = "${var.name_prefix}-https"
  url_map          = google_compute_url_map.public.id
  ssl_certificates = [google_compute_managed_ssl_certificate.lb.id]
  ssl_policy       = google_compute_ssl_policy.lb.id
}

resource "google_compute_global_forwarding_rule" "https" {
  name                  = "${var.name_prefix}-https"
  target                = google_compute_target_https_proxy.public.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# Plain HTTP only redirects to HTTPS.
resource "google_compute_url_map" "redirect" {
  name = "${var.name_prefix}-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "redirect" {
  name    = "${var.name_prefix}-http"
  url_map = google_compute_url_map.redirect.id
}

resource "google_compute_global_forwarding_rule" "http" {
  name                  = "${var.name_prefix}-http"
  target                = google_compute_target_http_proxy.redirect.id
  ip_address            = google_compute_global_address.lb.address
  port_range            = "80"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
