"""Klaviyo list sync (JSON:API, `revision` header, `Authorization: Klaviyo-API-Key <key>`).

List membership is keyed by Klaviyo profile id, so identifiers (email or external_id) are first
resolved: a cached id, else `GET /api/profiles/?filter=any(<field>,[...])` (≤ 100 per call), else for
adds `POST /api/profile-import/` (create-or-update, returns the id) — or, for 50 or more new profiles in
a batch, one `POST /api/profile-bulk-import-jobs/` job (which also adds them to the list) awaited and
followed by lookups. Then
`POST|DELETE /api/lists/<list_id>/relationships/profiles/` with ≤ 1000 profile ids per call. Adding to a
list does not change marketing consent (that is the Subscribe Profiles endpoint, deliberately unused).
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

import orjson

from segops.cache.base import Cache
from segops.connectors.delivery import HttpSync, PlatformError
from segops.connectors.egress import same_origin
from segops.connectors.models import KlaviyoConfig
from segops.connectors.platform import BatchOutcome

LIST_BATCH = 1000
LOOKUP_BATCH = 100
# Klaviyo advises its bulk import for many profiles and its synchronous upsert for a few.
BULK_IMPORT_MIN = 50
PROFILE_ID_TTL_SECONDS = 30 * 24 * 3600
JSON_API = "application/vnd.api+json"


class KlaviyoList:
    batch_size = LIST_BATCH

    def __init__(
        self,
        config: KlaviyoConfig,
        api_key: str,
        http: HttpSync,
        cache: Cache,
        cache_scope: str,
        job_poll_seconds: float = 2.0,
        job_timeout_seconds: float = 300.0,
    ) -> None:
        self.config = config
        self.job_poll_seconds = job_poll_seconds
        self.job_timeout_seconds = job_timeout_seconds
        self.base = str(config.base_url).rstrip("/")
        self.http = http
        self.cache = cache
        self.cache_scope = cache_scope
        self.headers = {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": config.revision,
            "Accept": JSON_API,
            "Content-Type": JSON_API,
        }

    def add(self, identifiers: list[str]) -> BatchOutcome:
        return self._apply("POST", identifiers)

    def remove(self, identifiers: list[str]) -> BatchOutcome:
        return self._apply("DELETE", identifiers)

    def _apply(self, method: str, identifiers: list[str]) -> BatchOutcome:
        create = method == "POST"
        outcome = BatchOutcome()
        profile_ids, cached = self._profile_ids(identifiers, outcome, create, use_cache=True)
        try:
            self._relationships(method, list(profile_ids.values()))
        except PlatformError as error:
            # A cached id whose profile was deleted or merged in Klaviyo is refused: resolve afresh, once.
            if error.retryable or error.status not in (400, 404) or not cached:
                raise
            self.cache.delete(*(self._cache_key(i) for i in cached))
            outcome = BatchOutcome()
            profile_ids, _ = self._profile_ids(identifiers, outcome, create, use_cache=False)
            self._relationships(method, list(profile_ids.values()))
        if not create:
            outcome.absent.update(i for i in identifiers if i not in profile_ids and i not in outcome.failed)
        return outcome

    def _relationships(self, method: str, profile_ids: list[str]) -> None:
        if not profile_ids:
            return
        url = f"{self.base}/api/lists/{quote(self.config.list_id, safe='')}/relationships/profiles/"
        body = {"data": [{"type": "profile", "id": pid} for pid in sorted(set(profile_ids))]}
        self.http.call(method, url, self.headers, body, ok=(200, 202, 204))

    def _profile_ids(
        self, identifiers: list[str], outcome: BatchOutcome, create: bool, use_cache: bool
    ) -> tuple[dict[str, str], list[str]]:
        """Profile id per identifier (and which identifiers came from the cache)."""
        found: dict[str, str] = {}
        unknown: list[str] = []
        for identifier in identifiers:
            cached = self.cache.get(self._cache_key(identifier)) if use_cache else None
            if cached is not None:
                found[identifier] = cached.decode()
            else:
                unknown.append(identifier)
        from_cache = list(found)
        filterable = [i for i in unknown if _filterable(i)]
        for start in range(0, len(filterable), LOOKUP_BATCH):
            for identifier, profile_id in self._lookup(filterable[start : start + LOOKUP_BATCH]).items():
                found[identifier] = profile_id
                self._remember(identifier, profile_id)
        if create:
            missing = [i for i in unknown if i not in found]
            bulk = [i for i in missing if _filterable(i)]
            if len(bulk) >= BULK_IMPORT_MIN:
                found.update(self._bulk_import(bulk, outcome))
                missing = [i for i in missing if not _filterable(i)]
            for identifier in missing:
                try:
                    found[identifier] = self._upsert(identifier)
                except PlatformError as error:
                    if error.retryable:
                        raise
                    outcome.failed[identifier] = error
                    continue
                self._remember(identifier, found[identifier])
        return found, from_cache

    def _bulk_import(self, identifiers: list[str], outcome: BatchOutcome) -> dict[str, str]:
        """Create many profiles with one Bulk Import Profiles job (which also adds them to the list),
        wait for it, then look the profiles up to learn their ids; those still unknown failed."""
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {
                    "profiles": {
                        "data": [{"type": "profile", "attributes": {self.config.identifier: i}} for i in identifiers]
                    }
                },
                "relationships": {"lists": {"data": [{"type": "list", "id": self.config.list_id}]}},
            }
        }
        response = self.http.call("POST", f"{self.base}/api/profile-bulk-import-jobs/", self.headers, body)
        job = str(orjson.loads(response.content)["data"]["id"])
        self._await_job(job)
        found: dict[str, str] = {}
        for start in range(0, len(identifiers), LOOKUP_BATCH):
            found.update(self._lookup(identifiers[start : start + LOOKUP_BATCH]))
        for identifier in identifiers:
            if identifier in found:
                self._remember(identifier, found[identifier])
            else:
                outcome.failed[identifier] = PlatformError(f"bulk import job {job} did not create the profile")
        return found

    def _await_job(self, job: str) -> None:
        url = f"{self.base}/api/profile-bulk-import-jobs/{quote(job, safe='')}/"
        deadline = time.monotonic() + self.job_timeout_seconds
        while True:
            attributes = orjson.loads(self.http.call("GET", url, self.headers, ok=(200,)).content)["data"]["attributes"]
            if attributes.get("status") in ("complete", "cancelled"):
                return
            if time.monotonic() >= deadline:
                raise PlatformError(f"bulk import job {job} still {attributes.get('status')}", retryable=True)
            self.http.sleep(self.job_poll_seconds)

    def _lookup(self, identifiers: list[str]) -> dict[str, str]:
        if not identifiers:
            return {}
        field = self.config.identifier
        values = ",".join(f'"{i}"' for i in identifiers)
        query = f"filter={quote(f'any({field},[{values}])', safe='')}&page%5Bsize%5D={LOOKUP_BATCH}"
        url = f"{self.base}/api/profiles/?{query}&fields%5Bprofile%5D={field}"
        # Klaviyo stores emails lower-cased; match on the same normal form it does.
        wanted = {self._normal(i): i for i in identifiers}
        found: dict[str, str] = {}
        while url:
            page = orjson.loads(self.http.call("GET", url, self.headers, ok=(200,)).content)
            for profile in page.get("data", []):
                value = (profile.get("attributes") or {}).get(field)
                if isinstance(value, str) and self._normal(value) in wanted:
                    found[wanted[self._normal(value)]] = str(profile["id"])
            url = (page.get("links") or {}).get("next") or ""
            if url and not same_origin(url, self.base):
                # The link comes from the response: following it elsewhere would send the API key there.
                raise PlatformError("GET /api/profiles/: pagination link leaves the Klaviyo host; not followed")
        return found

    def _normal(self, value: str) -> str:
        return value.strip().lower() if self.config.identifier == "email" else value

    def _upsert(self, identifier: str) -> str:
        body = {"data": {"type": "profile", "attributes": {self.config.identifier: identifier}}}
        response = self.http.call("POST", f"{self.base}/api/profile-import/", self.headers, body, ok=(200, 201))
        return str(orjson.loads(response.content)["data"]["id"])

    def _cache_key(self, identifier: str) -> str:
        digest = hashlib.sha256(identifier.encode()).hexdigest()
        return f"connector-profile:{self.cache_scope}:{digest}"

    def _remember(self, identifier: str, profile_id: str) -> None:
        self.cache.set(self._cache_key(identifier), profile_id.encode(), PROFILE_ID_TTL_SECONDS)


def _filterable(identifier: str) -> bool:
    """Whether the identifier can be quoted inside a Klaviyo filter expression."""
    return '"' not in identifier and "\\" not in identifier
