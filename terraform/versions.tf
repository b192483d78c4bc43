terraform {
  required_version = ">= 1.6"

  # State in a private GCS bucket: `terraform init -backend-config="bucket=..." -backend-config="prefix=..."`.
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.45, < 8.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
