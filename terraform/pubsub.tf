# One topic per manifest topic, each with a dead-letter topic (`<topic>-dead-letter`, the name
# segops.bus.base.dead_letter_topic gives). Every consumer function gets its own push
# subscription carrying the manifest's retry policy and max delivery attempts; messages that
# exhaust them land on the dead-letter topic, whose pull subscription keeps them for replay.
#
# Why push subscriptions and not the Eventarc trigger of google_cloudfunctions2_function:
# Eventarc creates and owns its Pub/Sub subscription and offers no dead-letter setting for it
# (hashicorp/terraform-provider-google#17697, #25069), so dead-lettering would need out-of-band
# gcloud patches that every redeploy can undo. A push subscription to the function's URL is the
# same delivery Eventarc performs (authenticated HTTPS POST of the Pub/Sub push body, retried
# with backoff until acked); functions-framework turns it into the same
# google.cloud.pubsub.topic.v1.messagePublished CloudEvent (tests/contract/test_push_delivery.py).
locals {
  consumers = {
    for name, f in local.pubsub_functions : name => {
      topic                 = f.trigger.topic
      max_delivery_attempts = try(f.trigger.max_delivery_attempts, 5)
      min_backoff_seconds   = try(f.trigger.min_backoff_seconds, 10)
      max_backoff_seconds   = try(f.trigger.max_backoff_seconds, 600)
      # The manifest's retry horizon (functions/manifest.json, docs/operations.md): the attempts and
      # backoffs above retry at least this long. Unacknowledged messages are kept a day past it, so a
      # backlog that outlived the horizon is still there to be replayed by seek.
      message_retention_seconds = ceil(f.trigger.retry_horizon_hours * 3600) + 86400
      # Pub/Sub waits this long for the ack: the function's own timeout (capped by Pub/Sub at 600 s).
      ack_deadline_seconds = min(max(f.timeout_seconds, 10), 600)
    }
  }
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic" "topic" {
  for_each                   = local.topics
  name                       = each.value
  message_retention_duration = "86400s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each                   = local.topics
  name                       = "${each.value}-dead-letter"
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_subscription" "dead_letter" {
  for_each                   = local.topics
  name                       = "${each.value}-dead-letter"
  topic                      = google_pubsub_topic.dead_letter[each.key].id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = true

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "consumer" {
  for_each                   = local.consumers
  name                       = "${each.value.topic}--${local.ids[each.key]}"
  topic                      = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds       = each.value.ack_deadline_seconds
  message_retention_duration = "${each.value.message_retention_seconds}s"

  push_config {
    # The topic in the path lets functions-framework fill the CloudEvent `source`.
    push_endpoint = "${google_cloudfunctions2_function.function[each.key].service_config[0].uri}/projects/${var.project_id}/topics/${each.value.topic}"

    oidc_token {
      service_account_email = google_service_account.push.email
    }
  }

  retry_policy {
    minimum_backoff = "${each.value.min_backoff_seconds}s"
    maximum_backoff = "${each.value.max_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.topic].id
    max_delivery_attempts = each.value.max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }
}

# Pub/Sub's service agent moves undeliverable messages: it must publish to the dead-letter
# topic and acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = local.topics
  topic    = google_pubsub_topic.dead_letter[each.key].id
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = local.consumers
  subscription = google_pubsub_subscription.consumer[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Cloud Scheduler → Pub/Sub: the periodic recompute tick of each manifest schedule.
resource "google_cloud_scheduler_job" "schedule" {
  for_each  = local.schedules
  name      = "${var.name_prefix}-${each.key}"
  region    = var.region
  schedule  = each.value.cron
  time_zone = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.topic[each.value.topic].id
    data       = base64encode(jsonencode(each.value.data))
  }

  retry_config {
    retry_count = 3
  }

  depends_on = [google_project_service.apis]
}
