"""Object store for exports and connector files: local directory or GCS with V4 signed URLs."""

from segops.objects.base import ObjectStore

__all__ = ["ObjectStore"]
