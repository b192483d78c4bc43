"""The local equivalent of Secret Manager (`make dev`, tests, deployments without GCP): each secret
sealed with Fernet (`segops.vault`) under its kind's key, stored in the control-plane store under
its tenant (`segops.store.keys.tenant_secret_key`). Only the current value is kept."""

from __future__ import annotations

from pydantic import BaseModel

from segops import vault
from segops.store import DocumentRepository, keys
from segops.tenant_secrets.base import SecretKind, SecretName

PREFIX = "local"


class SealedSecret(BaseModel):
    sealed: str


class SealedSecrets:
    def __init__(self, documents: DocumentRepository, keys: dict[SecretKind, str]) -> None:
        # A kind whose key this function lacks has "" here: vault refuses it (fails closed).
        self._documents = documents
        self._keys = keys

    @staticmethod
    def _key(name: SecretName) -> str:
        return keys.tenant_secret_key(name.tenant_id, name.secret_id(PREFIX))

    def put(self, name: SecretName, value: str) -> None:
        self._documents.save(self._key(name), SealedSecret(sealed=vault.seal(self._keys[name.kind], value)))

    def get(self, name: SecretName) -> str | None:
        found = self._documents.load(self._key(name), SealedSecret)
        return None if found is None else vault.unseal(self._keys[name.kind], found.sealed)

    def delete(self, name: SecretName) -> None:
        self._documents.delete(self._key(name))
