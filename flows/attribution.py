"""The attribution report (issue 22): what each Klaviyo campaign and flow earned, grounded in the ERP.

One run: the conversion metric's id (the fleet's Placed Order, or the storefront's); the conversion events of
the period with their attributions (`GET /api/events?include=attributions`, read incrementally: cached in Redis,
only what is new since the last run, `state.attribution_cache`); Klaviyo's totals per campaign and flow from the
values reports, one request per month chunk and kind, settled chunks read once, open ones once per refresh
interval and never beyond the day's budget (`BCSYNC_ATTRIBUTION_VALUES_DAILY_BUDGET` of Klaviyo's 225); the
ERP's durable order facts of the period; then the pure join (`sync.attribution.join`). Mismatches and ERP orders
without a conversion event become exceptions (`attribution_mismatch`, `attribution_event_missing`).

Delivery is never blocked: the values reports have their own budget (no delivery calls them), the events read
goes through the reconciliation read budget (a share of what the lanes leave), and a report whose slot does not
come soon is kept from the cache (the run says which chunks are stale).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from config.mapping import Mapping
from config.settings import Settings
from connectors.klaviyo.attribution_reads import AttributionReads, ValuesThrottled
from state.attribution_cache import AttributionCache
from state.exceptions import ExceptionRegister
from state.order_facts import OrderFactsStore
from sync.attribution.join import AttributionReport, Conversion, ErpOrder, Kind, KlaviyoTotal, join
from sync.attribution.klaviyo import chunks, conversions_of_page, merge_totals, totals_of_results
from sync.orders.facts import OrderFacts
from sync.orders.status import OrderStatus

KINDS: tuple[Kind, ...] = ("campaign", "flow")
MISMATCH = "attribution_mismatch"
MISSING = "attribution_event_missing"


class AttributionSetupError(ValueError):
    """The run cannot start (a setting names no metric): one line for the command."""


@dataclass
class RunResult:
    report: AttributionReport
    since: datetime
    until: datetime
    metric: str  # fleet | storefront
    metric_id: str
    requests: Counter[str] = field(default_factory=Counter)
    chunks_read: int = 0
    chunks_cached: int = 0
    chunks_stale: list[str] = field(default_factory=list)  # kind:chunk kept from an old copy, or missing
    events_read_since: datetime | None = None  # where this run's events read started
    values_calls_today: int = 0
    exceptions: Counter[str] = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        return not self.chunks_stale


class AttributionRun:
    def __init__(self, settings: Settings, mapping: Mapping, reads: AttributionReads, cache: AttributionCache,
                 facts: OrderFactsStore, register: ExceptionRegister | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.mapping = mapping
        self.reads = reads
        self.cache = cache
        self.facts = facts
        self.register = register
        self.clock = clock

    def run(self, since: datetime, until: datetime | None = None, campaign: str | None = None,
            record: bool = True) -> RunResult:
        now = datetime.fromtimestamp(self.clock(), UTC)
        until = min(until or now, now)
        if not since < until:
            raise AttributionSetupError(f"the period is empty: --since {since.isoformat()} is not before "
                                        f"--until {until.isoformat()}")
        storefront = self.settings.attribution_conversion_metric == "storefront"
        metric_id = self._metric_id(storefront)
        result = RunResult(report=join([], [], []), since=since, until=until,
                           metric="storefront" if storefront else "fleet", metric_id=metric_id)
        conversions = self._conversions(metric_id, since, until, now, storefront, result) if metric_id else []
        totals = self._totals(metric_id, since, until, now, until == now, result) if metric_id else []
        orders = [o for o in (self._erp_order(f, storefront) for f in self.facts.every_order())
                  if o is not None and since <= o.placed_at < until]
        result.report = join(conversions, orders, totals, only=campaign)
        result.requests = Counter(self.reads.requests)
        result.values_calls_today = self.cache.values_calls_today(self.clock())
        if record and self.register is not None:
            self._record(result, now)
        return result

    # --- Klaviyo ----------------------------------------------------------------------------------------
    def _metric_id(self, storefront: bool) -> str:
        """The conversion metric's id ("" when the fleet's metric has no event yet: nothing converted)."""
        wanted = self.settings.attribution_storefront_metric if storefront else self.mapping.metrics.placed_order
        if storefront and not wanted:
            raise AttributionSetupError("BCSYNC_ATTRIBUTION_CONVERSION_METRIC=storefront needs "
                                        "BCSYNC_ATTRIBUTION_STOREFRONT_METRIC (the storefront's Placed Order metric)")
        ids = self.reads.metric_ids()
        if wanted in ids.values():
            return wanted
        if wanted in ids:
            return ids[wanted]
        if storefront:
            raise AttributionSetupError(f"BCSYNC_ATTRIBUTION_STOREFRONT_METRIC={wanted!r}: no such metric in Klaviyo")
        return ""

    def _conversions(self, metric_id: str, since: datetime, until: datetime, now: datetime, storefront: bool,
                     result: RunResult) -> list[Conversion]:
        """The period's conversion events: the cache, plus what lies outside what it covers (before its start,
        after its mark less the overlap)."""
        join_property = self.settings.attribution_storefront_ref_property if storefront else "ErpOrderNumber"
        covered, mark = self.cache.covered_since(metric_id), self.cache.mark(metric_id)
        overlap = timedelta(hours=self.settings.attribution_event_overlap_hours)
        ranges: list[tuple[datetime, datetime]] = []
        if covered is None or mark is None:
            ranges.append((since, until))
        else:
            if since < covered:
                ranges.append((since, covered))
            if until > mark - overlap:
                ranges.append((max(since, mark - overlap), until))
        fresh: list[Conversion] = []
        for start, end in ranges:
            for page in self.reads.conversion_pages(metric_id, start, end):
                fresh += conversions_of_page(page, join_property)
        result.events_read_since = min((start for start, _ in ranges), default=None)
        new_covered = since if covered is None else min(covered, since)
        new_mark = until if mark is None else max(mark, until)
        self.cache.put_events(metric_id, fresh, min(new_mark, now), new_covered)
        by_id = {c.event_id: c for c in self.cache.events(metric_id)}
        return [c for c in by_id.values() if since <= c.time < until]

    def _totals(self, metric_id: str, since: datetime, until: datetime, now: datetime, to_now: bool,
                result: RunResult) -> list[KlaviyoTotal]:
        """Klaviyo's totals per campaign (flow) over the period, from the month chunks' values reports. A period
        up to now has its last chunk cached as the month so far (`Chunk.open_key`): read again only once the
        refresh interval has passed, so a run every hour does not read it every hour."""
        settle = timedelta(days=self.settings.attribution_settle_days)
        refresh = self.settings.attribution_refresh_seconds
        out: list[KlaviyoTotal] = []
        for kind in KINDS:
            parts: list[dict[str, tuple[Decimal, int]]] = []
            for chunk in chunks(since, until):
                key = chunk.open_key if to_now and chunk.end == until else chunk.key
                cached = self.cache.chunk(kind, metric_id, key)
                settled_copy = cached is not None and cached[0] >= (chunk.end + settle).timestamp()
                recent_copy = cached is not None and now.timestamp() - cached[0] < refresh
                if cached is not None and (settled_copy or recent_copy):
                    result.chunks_cached += 1
                    parts.append(cached[1])
                    continue
                totals = self._read_chunk(kind, metric_id, chunk.start, chunk.end)
                if totals is None:
                    result.chunks_stale.append(f"{kind}:{key}")
                    if cached is not None:
                        parts.append(cached[1])
                    continue
                result.chunks_read += 1
                self.cache.put_chunk(kind, metric_id, key, totals, at=now.timestamp())
                parts.append(totals)
            out += merge_totals(kind, parts)
        return out

    def _read_chunk(self, kind: Kind, metric_id: str, start: datetime,
                    end: datetime) -> dict[str, tuple[Decimal, int]] | None:
        if not self.cache.take_values_call(self.settings.attribution_values_daily_budget, self.clock()):
            return None
        try:
            return totals_of_results(kind, self.reads.values_report(kind, metric_id, start, end))
        except ValuesThrottled:
            return None

    # --- the ERP ----------------------------------------------------------------------------------------
    def _erp_order(self, facts: OrderFacts, storefront: bool) -> ErpOrder | None:
        if facts.placed_at is None:
            return None  # never placed: no conversion to expect
        if storefront:
            key = facts.storefront_ref
        else:  # the fleet sends no Placed Order for a channel whose storefront sends its own
            sends_own = facts.header.sales_channel in self.mapping.lifecycle.storefront_sends_placed
            key = "" if sends_own else facts.number
        return ErpOrder(
            number=facts.number, join_key=key, placed_at=facts.placed_at.astimezone(UTC),
            placed_value=facts.placed_value, cancelled_value=facts.cancelled_value, refunded=facts.refunded,
            shipped_value=facts.shipped_value,
            is_open=facts.status not in (OrderStatus.CLOSED, OrderStatus.CANCELLED),
            cancelled_in_full=facts.status == OrderStatus.CANCELLED,
            currency=facts.header.currency or self.mapping.tenant.currency)

    # --- exceptions -------------------------------------------------------------------------------------
    def _record(self, result: RunResult, now: datetime) -> None:
        assert self.register is not None
        stale_kinds = {entry.split(":", 1)[0] for entry in result.chunks_stale}
        for row in result.report.sends:
            if not row.mismatch or row.kind in stale_kinds:  # a stale total proves nothing
                continue
            differing = [line.number for line in row.orders if line.value_differs]
            self.register.record(
                MISMATCH, f"{row.kind}:{row.send_id}",
                f"Klaviyo attributes {row.klaviyo_revenue or 0} to {row.kind} {row.send_id}; the ERP's placed value "
                f"of the same orders is {row.erp_placed}",
                details={"klaviyo": str(row.klaviyo_revenue or 0), "erp": str(row.erp_placed),
                         "metric": result.metric, "since": result.since.isoformat(),
                         "until": result.until.isoformat(), "examples": differing[:20]})
            result.exceptions[MISMATCH] += 1
        grace = now - timedelta(minutes=self.settings.attribution_grace_minutes)
        for order in result.report.missing:
            if order.placed_at > grace:
                continue
            self.register.record(
                MISSING, f"order:{order.number}",
                f"ERP order {order.number} placed {order.placed_at.isoformat()} ({order.placed_value}) has no "
                f"{'storefront ' if result.metric == 'storefront' else ''}Placed Order in Klaviyo"
                + (f" (storefront reference {order.join_key})" if result.metric == "storefront" else ""),
                severity="warning",
                details={"klaviyo": None, "erp": str(order.placed_value), "metric": result.metric})
            result.exceptions[MISSING] += 1


def build_attribution_run() -> AttributionRun:
    """The run of this fleet: its settings and mapping, the batch lane's Klaviyo client (the events read behind
    the reconciliation read budget), the cache, the order facts and the exception register."""
    from config.mapping import get_mapping  # noqa: PLC0415
    from config.settings import get_settings  # noqa: PLC0415
    from connectors.klaviyo.read_budget import ReadBudget  # noqa: PLC0415
    from delivery.runtime import runtime  # noqa: PLC0415

    settings, mapping, rt = get_settings(), get_mapping(), runtime()
    reads = AttributionReads(rt.client("batch"), ReadBudget(rt.limiter, settings.reconcile_read_share))
    return AttributionRun(settings, mapping, reads, AttributionCache(rt.redis, settings.key_prefix),
                          OrderFactsStore(rt.redis, settings.key_prefix), rt.exceptions)
