# The web console (console/): its build is uploaded to a private bucket that the load balancer serves
# at `/` through a CDN-enabled backend bucket, on the same origin as the API (see lb.tf for the
# routing and docs/deploy.md for the upload). Client routes (/segments/42, ...) are not objects: the
# bucket's not-found page is index.html, so they load the app, which routes itself.
resource "google_storage_bucket" "console" {
  name                        = "${var.project_id}-${var.name_prefix}-console"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  website {
    main_page_suffix = "index.html"
    not_found_page   = "index.html"
  }

  # Each upload replaces the build; old generations allow a rollback for a week.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.apis]
}

# The bucket stays private: only Cloud CDN's cache-fill identity may read it (no allUsers grant).
resource "google_storage_bucket_iam_member" "console_cdn_fill" {
  bucket = google_storage_bucket.console.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:service-${data.google_project.this.number}@cloud-cdn-fill.iam.gserviceaccount.com"
}

resource "google_compute_backend_bucket" "console" {
  name        = "${var.name_prefix}-console"
  bucket_name = google_storage_bucket.console.name
  enable_cdn  = true

  # Hashed assets are uploaded with a one-year immutable Cache-Control and index.html with no-cache
  # (docs/deploy.md): the CDN follows the objects' own headers.
  cdn_policy {
    cache_mode       = "USE_ORIGIN_HEADERS"
    negative_caching = false
  }
}
