# Control plane (tenants, users, keys, segments: small JSON documents with compare-and-swap on
# the object generation), exports (segment files behind short-lived signed URLs) and the
# function source zips. None of them is ever public.
resource "google_storage_bucket" "control_plane" {
  name                        = "${var.project_id}-${var.name_prefix}-control-plane"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Old generations are the undo history of every document; keep a bounded amount of it: at most
  # 20 per document, none older than 30 days. The age bound is what reclaims a deleted document
  # (its one old generation never has 20 newer ones): a consumed signup, a published outbox entry.
  lifecycle_rule {
    condition {
      num_newer_versions = 20
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  # Short-lived account documents past their use (each write restarts an object's age): pending
  # signups and slug reservations (24 h), invitation tokens (7 days), sign-in families (30 days
  # after their last refresh). The application refuses them once expired; this only reclaims them.
  dynamic "lifecycle_rule" {
    for_each = { "signups/" = 2, "tenant-slug-reservations/" = 2, "invitation-tokens/" = 8, "refresh-families/" = 31 }
    content {
      condition {
        age            = lifecycle_rule.value
        matches_prefix = [lifecycle_rule.key]
      }
      action {
        type = "Delete"
      }
    }
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "exports" {
  name                        = "${var.project_id}-${var.name_prefix}-exports"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.export_retention_days
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
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

resource "google_storage_bucket" "sources" {
  name                        = "${var.project_id}-${var.name_prefix}-sources"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
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

resource "google_storage_bucket" "access_logs" {
  name                        = "${var.project_id}-${var.name_prefix}-access-logs"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 90
    }
    action {
      type = "Delete"
    }
  }

  # An expired log becomes an old generation when deleted; that one goes a day later.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 1
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis]
}

# Cloud Storage writes usage and storage logs as this group (cloud.google.com/storage/docs/access-logs).
resource "google_storage_bucket_iam_member" "access_logs_writer" {
  bucket = google_storage_bucket.access_logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}
