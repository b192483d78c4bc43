"""One contract for every `Store`: the local directory and GCS (the real GCS JSON API server)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import BaseModel
from segops.store import documents
from segops.store.base import GenerationMismatch, Store
from segops.store.documents import DocumentRepository
from segops.store.gcs import GcsStore
from segops.store.id_blocks import BLOCK_SIZE
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


def _together(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` for every i on its own thread, all released at once."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


class Tally(BaseModel):
    count: int = 0
    writers: list[int] = []


def test_twenty_concurrent_writers_on_one_document_lose_no_update(store: Store) -> None:
    # GIVEN one control-plane document and 20 writers updating it at the same instant, each twice
    repo = DocumentRepository(store)
    repo.create("tenants/1/tally", Tally())

    def write(writer: int) -> None:
        for _ in range(2):

            def change(current: Tally, writer: int = writer) -> Tally:
                return Tally(count=current.count + 1, writers=[*current.writers, writer])

            assert repo.update("tenants/1/tally", Tally, change) is not None

    _together(20, write)
    # THEN the document holds exactly every update once
    final = repo.load("tenants/1/tally", Tally)
    assert final is not None
    assert final.count == 40
    assert sorted(final.writers) == sorted([*range(20), *range(20)])


@pytest.fixture(params=["local", "gcs"])
def two_clients(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Store, Store]:
    """Two instances' clients of one control plane."""
    if request.param == "local":
        return LocalStore(tmp_path / "store"), LocalStore(tmp_path / "store")
    client: Any = request.getfixturevalue("gcs_client")
    bucket = request.getfixturevalue("gcs_bucket")
    return GcsStore(client, bucket), GcsStore(client, bucket)


def test_global_ids_are_unique_across_instances_and_write_the_counter_once_per_block(
    two_clients: tuple[Store, Store],
) -> None:
    # GIVEN two instances creating objects concurrently, 20 threads in all
    store = two_clients[0]
    instances = [DocumentRepository(client) for client in two_clients]
    allocated: list[int] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        repo = instances[i % 2]
        for _ in range(10):
            new = repo.new_id("things")
            with lock:
                allocated.append(new)

    _together(20, create)
    # THEN every id is unique, positive and small, and the counter advanced by whole blocks only
    assert len(set(allocated)) == 200 and min(allocated) >= 1
    counter = store.get("counters/things")
    assert counter is not None
    assert counter.body["value"] % BLOCK_SIZE == 0 and counter.body["value"] <= 6 * BLOCK_SIZE
    assert max(allocated) <= counter.body["value"]


def test_a_sequence_continues_from_its_start_and_stays_strictly_increasing(store: Store) -> None:
    repo = DocumentRepository(store)
    assert [repo.next_id("syncs-c1", lambda: 41) for _ in range(3)] == [42, 43, 44]
    # `start` only seeds a missing counter
    assert repo.next_id("syncs-c1", lambda: 1000) == 45


def test_cas_retries_back_off_exponentially_with_full_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    monkeypatch.setattr(documents.time, "sleep", waits.append)
    for attempt in range(1, 13):
        for _ in range(20):
            documents.cas_backoff(attempt)
    ceilings = [min(2.0, 0.01 * 2 ** (attempt - 1)) for attempt in range(1, 13)]
    rounds = [waits[i * 20 : (i + 1) * 20] for i in range(12)]
    for ceiling, round_ in zip(ceilings, rounds, strict=True):
        assert all(0 <= wait <= ceiling for wait in round_)
        assert len(set(round_)) > 1  # jittered: colliding writers do not retry in lockstep
    assert max(rounds[-1]) > 0.5  # and the spread grows up to the cap


def test_gcs_conditional_write_whose_answer_was_lost_is_still_ours(gcs_client: Any, gcs_bucket: str) -> None:
    # GIVEN a network that loses the answer to the first upload after the server stored it: the
    # library retries, and the retry's precondition fails against that very write
    store = GcsStore(gcs_client, gcs_bucket)
    generation = store.put("tenants/1/members/7", {"role": "member"})
    original = gcs_client._http.request
    lost: list[str] = []

    def lose_first_upload_answer(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = original(method, url, *args, **kwargs)
        if method == "POST" and "/upload/" in url and not lost:
            lost.append(url)
            raise requests.exceptions.ConnectionError("connection reset after the request was sent")
        return response

    gcs_client._http.request = lose_first_upload_answer
    try:
        # WHEN a compare-and-swap write goes out THEN it succeeds: the write is recognised as ours
        written = store.put("tenants/1/members/7", {"role": "admin"}, if_generation=generation)
    finally:
        del gcs_client._http.request
    assert lost
    document = store.get("tenants/1/members/7")
    assert document is not None and document.body == {"role": "admin"} and document.generation == written
    # AND another writer's change is still a mismatch
    with pytest.raises(GenerationMismatch):
        store.put("tenants/1/members/7", {"role": "owner"}, if_generation=generation)
