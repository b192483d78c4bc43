variable "project_id" {
  description = "Google Cloud project that hosts SegOps."
  type        = string
}

variable "region" {
  description = "Region of the functions, Pub/Sub triggers, Valkey, VPC connector and buckets."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of resource names (buckets, service accounts, secrets, functions). Pub/Sub topics and their subscriptions keep the names the code publishes to: one stack per project."
  type        = string
  default     = "segops"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name_prefix))
    error_message = "name_prefix: lowercase letters, digits and dashes, at most 15 characters."
  }
}

variable "domains" {
  description = "Hostnames of the public API (Google-managed TLS certificate; point their DNS A records at the load balancer IP)."
  type        = list(string)
}

variable "clickhouse_url" {
  description = "ClickHouse HTTPS endpoint, e.g. https://abc123.europe-west4.gcp.clickhouse.cloud:8443"
  type        = string

  validation {
    condition     = can(regex("^https://", var.clickhouse_url))
    error_message = "clickhouse_url must use https:// (credentials travel with every request)."
  }
}

variable "clickhouse_user" {
  description = "ClickHouse user the functions connect as (see docs/deploy.md for its grants and row policies)."
  type        = string
  default     = "segops_app"
}

variable "clickhouse_database" {
  description = "ClickHouse database holding the SegOps tables."
  type        = string
  default     = "segops"
}

variable "clickhouse_password" {
  description = "Password of clickhouse_user; stored in Secret Manager (it also lands in the Terraform state: keep the state bucket private)."
  type        = string
  sensitive   = true
}

variable "secret_values" {
  description = "Optional initial values of the manifest's secrets, by secret name (e.g. jwt-secret). Leave empty to add versions with gcloud instead, which keeps them out of the state."
  type        = map(string)
  default     = {}
  sensitive   = true
}

variable "export_retention_days" {
  description = "Days after which exported segment files are deleted from the exports bucket."
  type        = number
  default     = 7
}

variable "connector_cidr" {
  description = "/28 range of the Serverless VPC Access connector (functions → Valkey)."
  type        = string
  default     = "10.8.0.0/28"
}

variable "psc_subnet_cidr" {
  description = "Subnet from which Private Service Connect assigns the Valkey endpoint address."
  type        = string
  default     = "10.9.0.0/24"
}

variable "valkey_node_type" {
  description = "Memorystore for Valkey node type."
  type        = string
  default     = "SHARED_CORE_NANO"
}

variable "valkey_replica_count" {
  description = "Valkey replicas (0 = single node; 1+ for zonal failover)."
  type        = number
  default     = 1
}

variable "log_level" {
  description = "SEGOPS_LOG_LEVEL of every function."
  type        = string
  default     = "INFO"
}

variable "build_dir" {
  description = "Where `make package` wrote the function zips, relative to this directory."
  type        = string
  default     = "../build/functions"
}

variable "smtp_host" {
  description = "SMTP server for account mail (verification, invitations) of functions that hold the smtp-password secret."
  type        = string
}

variable "smtp_port" {
  description = "Its submission port (STARTTLS is required)."
  type        = number
  default     = 587
}

variable "smtp_username" {
  description = "SMTP login; the password is the smtp-password secret (docs/deploy.md)."
  type        = string
}

variable "mail_from" {
  description = "From address of account mail, e.g. \"SegOps <no-reply@example.com>\"."
  type        = string
}

variable "gemini_model" {
  description = "Vertex AI Gemini model the AI segment builder drafts with (e.g. gemini-2.5-flash). Empty: the offline provider, and no Vertex AI API or IAM grant at all."
  type        = string
  default     = ""
}

variable "gemini_location" {
  description = "Vertex AI location of the Gemini model."
  type        = string
  default     = "us-central1"
}
