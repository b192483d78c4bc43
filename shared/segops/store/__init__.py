"""Control-plane document store: small JSON documents with compare-and-swap on generation."""

from segops.store.base import Document, GenerationMismatch, Store
from segops.store.documents import DocumentRepository

__all__ = ["Document", "DocumentRepository", "GenerationMismatch", "Store"]
