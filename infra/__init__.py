"""Deployment tooling: per-function packaging for Terraform."""
