"""One contract for every `Store`: the local directory and GCS (the real GCS JSON API server)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from segops.store.base import GenerationMismatch, Store
from segops.store.documents import DocumentRepository
from segops.store.gcs import GcsStore
from segops.store.local import LocalStore


@pytest.fixture(params=["local", "gcs"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    client: Any = request.getfixturevalue("gcs_client")
    return GcsStore(client, request.getfixturevalue("gcs_bucket"))


def test_get_missing_is_none(store: Store) -> None:
    assert store.get("tenants/1/tenant") is None


def test_put_then_get_round_trips_body_and_generation(store: Store) -> None:
    # GIVEN a document written unconditionally
    generation = store.put("tenants/1/tenant", {"id": 1, "name": "Acme ✓", "tags": ["a", "b"], "n": None})
    # WHEN it is read back
    doc = store.get("tenants/1/tenant")
    # THEN body and generation are what the write returned
    assert doc is not None
    assert doc.key == "tenants/1/tenant"
    assert doc.body == {"id": 1, "name": "Acme ✓", "tags": ["a", "b"], "n": None}
    assert doc.generation == generation > 0


def test_generation_changes_on_every_write(store: Store) -> None:
    first = store.put("counters/x", {"value": 1})
    second = store.put("counters/x", {"value": 2})
    assert second != first
    doc = store.get("counters/x")
    assert doc is not None and doc.generation == second and doc.body == {"value": 2}


def test_create_only_with_generation_zero(store: Store) -> None:
    # GIVEN a key claimed with if_generation=0
    store.put("tenant-slugs/acme", {"id": 1}, if_generation=0)
    # WHEN a second writer tries to claim it
    with pytest.raises(GenerationMismatch):
        store.put("tenant-slugs/acme", {"id": 2}, if_generation=0)
    # THEN the first claim stands
    doc = store.get("tenant-slugs/acme")
    assert doc is not None and doc.body == {"id": 1}


def test_cas_conflict_on_stale_generation(store: Store) -> None:
    # GIVEN two readers of the same generation
    generation = store.put("users/1", {"v": 0})
    store.put("users/1", {"v": 1}, if_generation=generation)
    # WHEN the slower one writes with the generation it read
    with pytest.raises(GenerationMismatch):
        store.put("users/1", {"v": 2}, if_generation=generation)
    # THEN the faster writer's value survives
    doc = store.get("users/1")
    assert doc is not None and doc.body == {"v": 1}


def test_conditional_write_on_missing_key_fails(store: Store) -> None:
    with pytest.raises(GenerationMismatch):
        store.put("users/404", {"v": 1}, if_generation=12345)
    assert store.get("users/404") is None


def test_list_prefix_returns_sorted_keys_under_prefix_only(store: Store) -> None:
    for key in ["tenants/1/api-keys/2", "tenants/1/api-keys/1", "tenants/1/api-keys-x/9", "tenants/2/api-keys/1"]:
        store.put(key, {"k": key})
    assert store.list("tenants/1/api-keys/") == ["tenants/1/api-keys/1", "tenants/1/api-keys/2"]
    assert store.list("tenants/3/") == []


def test_delete_with_current_generation(store: Store) -> None:
    generation = store.put("tenants/1/members/5", {"role": "member"})
    store.delete("tenants/1/members/5", if_generation=generation)
    assert store.get("tenants/1/members/5") is None
    assert store.list("tenants/1/members/") == []


def test_delete_with_stale_generation_is_rejected(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    generation = store.put("tenants/1/members/5", {"role": "member"})
    with pytest.raises(GenerationMismatch):
        store.delete("tenants/1/members/5", if_generation=generation + 1)
    assert store.get("tenants/1/members/5") is not None


def test_gcs_delete_sends_the_generation_precondition(gcs_client: Any, gcs_bucket: str) -> None:
    # fake-gcs-server ignores ifGenerationMatch on DELETE (real GCS answers 412), so the contract
    # checked here is the request GcsStore sends: the precondition must be on the wire.
    store = GcsStore(gcs_client, gcs_bucket)
    generation = store.put("tenants/1/members/5", {"role": "member"})
    sent: list[tuple[str, str]] = []
    original = gcs_client._http.request

    def record(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, url))
        return original(method, url, *args, **kwargs)

    gcs_client._http.request = record
    try:
        store.delete("tenants/1/members/5", if_generation=generation)
    finally:
        del gcs_client._http.request
    deletes = [url for method, url in sent if method == "DELETE"]
    assert len(deletes) == 1
    assert f"ifGenerationMatch={generation}" in deletes[0]
    assert "/o/tenants%2F1%2Fmembers%2F5.json" in deletes[0]


def test_delete_missing(store: Store) -> None:
    store.delete("users/404")  # unconditional: nothing to do
    store.delete("users/404", if_generation=0)  # "must not exist": holds
    with pytest.raises(GenerationMismatch):
        store.delete("users/404", if_generation=7)


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "A/upper", "a/../b", "", "a/b/"])
def test_keys_that_could_escape_are_rejected(store: Store, key: str) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        store.put(key, {})


def test_check_passes_when_reachable(store: Store) -> None:
    store.check()


def test_concurrent_counter_increments_lose_nothing(store: Store) -> None:
    # GIVEN several threads allocating ids through the CAS counter
    repo = DocumentRepository(store)
    allocated: list[int] = []
    lock = threading.Lock()

    def allocate() -> None:
        for _ in range(5):
            value = repo.next_id("things")
            with lock:
                allocated.append(value)

    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN every id is unique and the sequence has no gaps
    assert sorted(allocated) == list(range(1, 21))
