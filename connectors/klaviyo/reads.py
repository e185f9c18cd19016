"""The Klaviyo reads reconciliation needs, page by page with Klaviyo's cursors, each request through the
reconciliation read budget (`read_budget.ReadBudget`) and the client's fleet-wide limiter.

- profiles: every profile (`GET /api/profiles`, 100 per page) or those `any(<field>,[...])` names (100 values per
  call), with `additional-fields[profile]=subscriptions` for consent;
- events of one profile (`equals(profile_id,"...")`, up to 1,000 per page) and the metrics' names;
- catalog items and variants (`GET /api/catalog-items` / `catalog-variants`, 100 per page).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import RateLimitedLocally, ThrottledError, TransientError
from connectors.klaviyo.read_budget import ReadBudget

FILTER_BATCH = 100  # Klaviyo's largest page and `any(...)` list for profiles
TRANSIENT_TRIES = 5  # a read that keeps failing stops the run (its cursor keeps what was done)


class KlaviyoReads:
    def __init__(self, client: KlaviyoClient, budget: ReadBudget | None = None) -> None:
        self.client = client
        self.budget = budget
        self.requests: Counter[str] = Counter()  # per endpoint, for the summary and the benchmark
        self.throttled: Counter[str] = Counter()  # 429s per endpoint

    def _get(self, key: str, url: str | None, params: dict[str, Any]) -> Any:
        """One page: waits out the fleet's budget and Klaviyo's 429s (reconciliation is never in a hurry)."""
        failures = 0
        while True:
            if self.budget is not None:
                self.budget.take(key)
            self.requests[key] += 1
            try:
                return self.client.request(key, url=url, params=None if url else params).data
            except RateLimitedLocally as exc:
                time.sleep(min(exc.delay or 1.0, 30.0))
            except ThrottledError as exc:
                self.throttled[key] += 1
                time.sleep(min(exc.retry_after or 1.0, 60.0))
            except TransientError:
                failures += 1
                if failures >= TRANSIENT_TRIES:
                    raise
                time.sleep(failures)

    def _pages(self, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url: str | None = None
        while True:
            data = self._get(key, url, params)
            body = data if isinstance(data, dict) else {}
            yield from body.get("data") or []
            links = body.get("links")
            url = links.get("next") if isinstance(links, dict) else None
            if not url:
                return

    def all_profiles(self) -> Iterator[dict[str, Any]]:
        yield from self._pages("profiles:get", {"page[size]": FILTER_BATCH,
                                                "additional-fields[profile]": "subscriptions"})

    def profiles_by(self, field: str, values: Sequence[str]) -> Iterator[dict[str, Any]]:
        unique = sorted({v for v in values if v})
        for start in range(0, len(unique), FILTER_BATCH):
            yield from self._pages("profiles:get", {
                "filter": f"any({field},{json.dumps(unique[start:start + FILTER_BATCH])})",
                "page[size]": FILTER_BATCH, "additional-fields[profile]": "subscriptions"})

    def events_of_profile(self, profile_id: str) -> Iterator[dict[str, Any]]:
        yield from self._pages("events:get", {"filter": f'equals(profile_id,"{profile_id}")', "page[size]": 200})

    def all_events(self) -> Iterator[dict[str, Any]]:
        """Every event of the account, 200 per page: on a full run far fewer reads than one per profile."""
        yield from self._pages("events:get", {"page[size]": 200})

    def metric_names(self) -> dict[str, str]:
        return {str(m["id"]): str((m.get("attributes") or {}).get("name")) for m in self._pages("metrics:get", {})}

    def catalog_items(self) -> Iterator[dict[str, Any]]:
        yield from self._pages("catalog-items:get", {"page[size]": 100})

    def catalog_variants(self) -> Iterator[dict[str, Any]]:
        yield from self._pages("catalog-variants:get", {"page[size]": 100})
