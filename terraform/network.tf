# Functions reach Valkey through a Serverless VPC Access connector; Valkey is reachable only
# inside the VPC through a Private Service Connect endpoint.
resource "google_compute_network" "vpc" {
  name                    = "${var.name_prefix}-vpc"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.apis]
}

resource "google_compute_subnetwork" "psc" {
  name                     = "${var.name_prefix}-psc"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.psc_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_vpc_access_connector" "functions" {
  name          = "${var.name_prefix}-conn"
  region        = var.region
  network       = google_compute_network.vpc.name
  ip_cidr_range = var.connector_cidr
  min_instances = 2
  max_instances = 10
  machine_type  = "e2-micro"
}

resource "google_network_connectivity_service_connection_policy" "valkey" {
  name          = "${var.name_prefix}-valkey"
  location      = var.region
  service_class = "gcp-memorystore"
  network       = google_compute_network.vpc.id

  psc_config {
    subnetworks = [google_compute_subnetwork.psc.id]
  }
}

# No AUTH/TLS on Valkey: it is reachable only from inside the VPC, and no cache entry authenticates
# anyone unless it is HMAC-signed with `cache-signing-key` (segops.cache.signed, docs/security.md).
# IAM_AUTH and SERVER_AUTHENTICATION would need IAM-token auth and TLS in the client (not built).
resource "google_memorystore_instance" "cache" {
  instance_id                 = "${var.name_prefix}-cache"
  location                    = var.region
  mode                        = "CLUSTER_DISABLED"
  shard_count                 = 1
  replica_count               = var.valkey_replica_count
  node_type                   = var.valkey_node_type
  engine_version              = "VALKEY_8_0"
  authorization_mode          = "AUTH_DISABLED"
  transit_encryption_mode     = "TRANSIT_ENCRYPTION_DISABLED"
  deletion_protection_enabled = true

  # Every key SegOps writes expires (tests/integration/test_cache_keys.py), so every key can be evicted
  # under volatile-lru, the least recently used first; noeviction would refuse writes when full
  # (docs/operations.md, "Valkey memory and eviction"). Memorystore's default, pinned.
  engine_configs = {
    "maxmemory-policy" = "volatile-lru"
  }

  desired_auto_created_endpoints {
    network    = google_compute_network.vpc.id
    project_id = var.project_id
  }

  zone_distribution_config {
    mode = "MULTI_ZONE"
  }

  depends_on = [google_network_connectivity_service_connection_policy.valkey]
}

locals {
  valkey_connection = google_memorystore_instance.cache.endpoints[0].connections[0].psc_auto_connection[0]
  valkey_host       = local.valkey_connection.ip_address
  valkey_port       = local.valkey_connection.port
}

# Nothing outside the VPC may open connections into it; the connector's own rules (created by
# Serverless VPC Access at a higher priority) are the only ingress.
resource "google_compute_firewall" "deny_ingress" {
  name      = "${var.name_prefix}-deny-ingress"
  network   = google_compute_network.vpc.name
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
