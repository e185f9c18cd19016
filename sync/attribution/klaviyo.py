"""Klaviyo's answers as the join's inputs: a page of `GET /api/events?include=attributions` as `Conversion`s, a
values report's results as totals per campaign or flow, and the report period cut into the chunks the values
reports are read and cached by.

Chunks: the period is cut at calendar-month boundaries (the tenant's timezone). A chunk that ended more than
`settle` ago is settled - Klaviyo's attribution of its conversions no longer changes (its window is over), so its
report is read once and kept; the others are read again once their cached copy is older than the refresh
interval. A daily report therefore costs about (open chunks) x (campaign, flow) values requests, whatever the
period's length.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.attribution.join import Conversion, Kind, KlaviyoTotal


def conversions_of_page(page: dict[str, Any], join_property: str) -> list[Conversion]:
    """The page's events with their attribution (the compound document's `included`); the join key is the event
    property `join_property` (`$event_id`: the event's unique_id as Klaviyo surfaces it)."""
    included = {(item.get("type"), item.get("id")): item for item in page.get("included") or []}
    out: list[Conversion] = []
    for event in page.get("data") or []:
        attributes = event.get("attributes") or {}
        properties = attributes.get("event_properties") or {}
        kind: Kind | None = None
        send_id = message_id = ""
        refs = (((event.get("relationships") or {}).get("attributions") or {}).get("data")) or []
        for ref in refs[:1]:  # Klaviyo attributes a conversion to one message
            relations = (included.get(("attribution", ref.get("id"))) or {}).get("relationships") or {}
            for candidate in ("campaign", "flow"):
                if (relations.get(candidate) or {}).get("data"):
                    kind = candidate
                    send_id = str(relations[candidate]["data"]["id"])
                    message_id = str(((relations.get(f"{candidate}-message") or {}).get("data") or {}).get("id", ""))
                    break
        key = properties.get(join_property)
        out.append(Conversion(
            event_id=str(event.get("id")), order_key="" if key is None else str(key),
            value=_decimal(properties.get("$value")), time=_time(attributes), kind=kind, send_id=send_id,
            message_id=message_id))
    return out


def totals_of_results(kind: Kind, results: list[dict[str, Any]]) -> dict[str, tuple[Decimal, int]]:
    """A values report's rows (one per message and channel) summed per campaign or flow: (revenue, conversions)."""
    sums: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), 0])
    for row in results:
        send_id = (row.get("groupings") or {}).get(f"{kind}_id")
        if not send_id:
            continue
        stats = row.get("statistics") or {}
        sums[str(send_id)][0] += _decimal(stats.get("conversion_value"))
        sums[str(send_id)][1] += int(float(stats.get("conversions") or 0))
    return {send: (value, count) for send, (value, count) in sums.items()}


def merge_totals(kind: Kind, chunks: list[dict[str, tuple[Decimal, int]]]) -> list[KlaviyoTotal]:
    """The period's totals: the chunks' totals added up."""
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    count: dict[str, int] = defaultdict(int)
    for chunk in chunks:
        for send, (value, n) in chunk.items():
            revenue[send] += value
            count[send] += n
    return [KlaviyoTotal(kind, send, revenue[send].quantize(Decimal("0.01")), count[send]) for send in sorted(revenue)]


@dataclass(frozen=True)
class Chunk:
    start: datetime
    end: datetime
    month_end: datetime  # where its calendar month ends (`end` when the period does not stop inside it)

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    @property
    def open_key(self) -> str:
        """The key of a chunk that stops at "now": the month so far, whatever the minute (a run an hour later
        finds it and keeps it until the refresh interval has passed)."""
        return f"{self.start.isoformat()}/{self.month_end.isoformat()}:open"

    def settled(self, now: datetime, settle: timedelta) -> bool:
        return self.end + settle <= now


def chunks(since: datetime, until: datetime) -> list[Chunk]:
    """[since, until) cut at each calendar month's start in `since`'s timezone (the tenant's: a report of whole
    months is whole chunks)."""
    zone = since.tzinfo or UTC
    out: list[Chunk] = []
    start = since
    while start < until:
        local = start.astimezone(zone)
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        month_end = datetime(year, month, 1, tzinfo=zone)
        end = min(month_end, until)
        out.append(Chunk(start, end, month_end))
        start = end
    return out


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value is not None else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def _time(attributes: dict[str, Any]) -> datetime:
    raw = attributes.get("datetime")
    if isinstance(raw, str):
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return datetime.fromtimestamp(int(attributes.get("timestamp") or 0), UTC)
