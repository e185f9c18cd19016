"""The Klaviyo reads of the attribution report (issue 22): conversion events with their attributions, the
metrics' ids, and the campaign and flow values reports.

- `conversion_pages`: `GET /api/events?filter=and(equals(metric_id,"M"),greater-or-equal(datetime,"..."),
  less-than(datetime,"..."))&include=attributions&page[size]=1000`, page by page with Klaviyo's cursors (XL tier:
  a 10,000-order period is 10 requests), through the reconciliation read budget (`read_budget.ReadBudget`), so
  delivery keeps most of the endpoint;
- `values_report`: one `POST /api/<kind>-values-reports` for a custom timeframe, every campaign (or flow)
  message in one answer (`conversions`, `conversion_value` for the conversion metric). Their limits are 1/s, 2/m
  and 225 a day: the fleet limiter holds the first two (the `values` tier), the caller the day's count; a 429 is
  waited out up to `max_wait`, then `ValuesThrottled` tells the caller to keep its cached copy.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import RateLimitedLocally, ThrottledError, TransientError
from connectors.klaviyo.read_budget import ReadBudget

PAGE_SIZE = 1000  # Klaviyo's largest page of events
TRANSIENT_TRIES = 5
STATISTICS = ("conversions", "conversion_value")


class ValuesThrottled(Exception):
    """A values report could not be read now (Klaviyo's or the fleet's limit): keep what is cached."""


class AttributionReads:
    def __init__(self, client: KlaviyoClient, budget: ReadBudget | None = None, max_wait: float = 180.0) -> None:
        self.client = client
        self.budget = budget
        self.max_wait = max_wait  # the longest a values report waits for its slot before giving up for this run
        self.requests: Counter[str] = Counter()  # per endpoint: what a run spent (the summary, the benchmark)

    def _call(self, key: str, *, url: str | None = None, params: dict[str, Any] | None = None,
              json: Any = None, patient: bool = True) -> Any:
        started = time.monotonic()
        failures = 0
        while True:
            if self.budget is not None and key == "events:get":
                self.budget.take(key)
            try:
                self.requests[key] += 1
                return self.client.request(key, url=url, params=None if url else params, json=json).data
            except (RateLimitedLocally, ThrottledError) as exc:
                self.requests[key] -= isinstance(exc, RateLimitedLocally)  # never sent
                delay = (exc.delay if isinstance(exc, RateLimitedLocally) else exc.retry_after) or 1.0
                if not patient or time.monotonic() - started + delay > self.max_wait:
                    raise ValuesThrottled(f"{key}: limited for {delay:.0f} s") from None
                time.sleep(min(delay, 60.0))
            except TransientError:
                failures += 1
                if failures >= TRANSIENT_TRIES:
                    raise
                time.sleep(failures)

    def metric_ids(self) -> dict[str, str]:
        """Metric name -> id (the first of a name: a storefront metric of the same name is set by its id)."""
        out: dict[str, str] = {}
        url: str | None = None
        while True:
            body = self._call("metrics:get", url=url, params={}) or {}
            for metric in body.get("data") or []:
                out.setdefault(str((metric.get("attributes") or {}).get("name")), str(metric["id"]))
            url = (body.get("links") or {}).get("next")
            if not url:
                return out

    def conversion_pages(self, metric_id: str, since: datetime, until: datetime) -> Iterator[dict[str, Any]]:
        """The metric's events in [since, until), with their attributions, one compound document per page."""
        params: dict[str, Any] = {
            "filter": f'and(equals(metric_id,"{metric_id}"),greater-or-equal(datetime,"{_iso(since)}"),'
                      f'less-than(datetime,"{_iso(until)}"))',
            "include": "attributions", "page[size]": PAGE_SIZE, "sort": "datetime"}
        url: str | None = None
        while True:
            body = self._call("events:get", url=url, params=params) or {}
            yield body
            url = (body.get("links") or {}).get("next")
            if not url:
                return

    def values_report(self, kind: Literal["campaign", "flow"], metric_id: str, start: datetime,
                      end: datetime) -> list[dict[str, Any]]:
        """Klaviyo's values report rows for [start, end) (its timeframe; Klaviyo reads it in the account's
        timezone). Raises `ValuesThrottled` when no slot came within `max_wait`."""
        body = {"data": {"type": f"{kind}-values-report", "attributes": {
            "statistics": list(STATISTICS), "conversion_metric_id": metric_id,
            "timeframe": {"start": _iso(start), "end": _iso(end)}}}}
        answer = self._call(f"{kind}-values-reports", json=body) or {}
        return list(((answer.get("data") or {}).get("attributes") or {}).get("results") or [])


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
