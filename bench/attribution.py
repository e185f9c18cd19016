"""What the attribution report (`bcsync report attribution`, issue 22) spends at Klaviyo: requests per endpoint
for a report over N orders, what a second run reads, and the values-report requests of a day of scheduled runs
against Klaviyo's 225 a day.

    .venv/bin/python -m bench.attribution --orders 10000           # the issue's size
    .venv/bin/python -m bench.attribution --orders 2000 --write docs/performance.md

A private redis-server and the Klaviyo sandbox (in this process, over HTTP on loopback). N orders' durable facts
are written to Redis and their Placed Order events into the sandbox over `--months` months up to now, a third of
them attributed to 10 campaigns, a sixth to 3 flows; the fleet's own code does the rest (`flows.attribution`:
the events read with their attributions, the values reports per month chunk and kind, the join). Klaviyo's tier
numbers are multiplied by `--rate-scale` on both sides so the values reports' 2 a minute do not make the bench
wait: the request counts are the same at any scale. The day of runs uses a clock moved on by 24 h /
`--runs-per-day` before each run (the report's clock: refresh and settle ages, the day's count), with the
default refresh interval (6 h) and settle period (30 days).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import redis

from bench.doc_blocks import write_block
from config.mapping import Mapping
from config.settings import Settings
from connectors.klaviyo.attribution_reads import AttributionReads
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.endpoints import VALUES_PER_DAY
from connectors.klaviyo.limiter import FleetRateLimiter
from flows.attribution import AttributionRun
from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.attribution import Attribution
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.klaviyo.state import KlaviyoSandbox
from sandbox.redis_server import PrivateRedis
from sandbox.server import ServerThread
from state.attribution_cache import AttributionCache
from state.order_facts import OrderFactsStore
from sync.orders.facts import OrderFacts
from sync.orders.status import OrderStatus

PREFIX = "bench"


def load(sandbox: KlaviyoSandbox, facts: OrderFactsStore, orders: int, start: datetime, end: datetime) -> None:
    dice = random.Random(22)
    sandbox.attribution.define({
        "campaigns": [{"id": f"C{i}", "messages": [{"id": f"C{i}-M"}]} for i in range(10)],
        "flows": [{"id": f"F{i}", "messages": [{"id": f"F{i}-M"}]} for i in range(3)]}, sandbox.events)
    span = (end - start).total_seconds()
    pipe = facts.client.pipeline(transaction=False)
    for n in range(orders):
        number = f"SO{n:06d}"
        placed_at = start + timedelta(seconds=dice.random() * span)
        value = Decimal(dice.randrange(2000, 30000)) / 100
        status = dice.choice([OrderStatus.CLOSED, OrderStatus.CLOSED, OrderStatus.CONFIRMED, OrderStatus.CANCELLED])
        facts.put(OrderFacts(number=number, profile=f"external_id:C{n % 3000}", status=status, placed_at=placed_at,
                             placed_value=value, cancelled_value=value if status == OrderStatus.CANCELLED else
                             Decimal(0), refunded=Decimal(0)), pipe)
        event = sandbox.events.add(f"P{n % 3000}", "Placed Order", {
            "properties": {"ErpOrderNumber": number}, "value": float(value), "unique_id": number},
            placed_at, time.time())
        roll = dice.random()
        if event is not None and roll < 0.5:
            kind, send = ("campaign", f"C{n % 10}") if roll < 1 / 3 else ("flow", f"F{n % 3}")
            sandbox.attribution.by_event[event.id] = Attribution(f"A{n}", event.id, kind, send, f"{send}-M")
    pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=3, help="the report's period, up to now")
    parser.add_argument("--runs-per-day", type=int, default=24)
    parser.add_argument("--rate-scale", type=float, default=60.0)
    parser.add_argument("--write", type=Path, help="put the block into this doc (between its markers)")
    args = parser.parse_args()

    now = datetime.now(UTC)
    since = (now - timedelta(days=30 * args.months)).replace(hour=0, minute=0, second=0, microsecond=0)
    server = PrivateRedis.start()
    app = create_app(KlaviyoSandboxConfig(rate_limit_scale=args.rate_scale))
    try:
        with ServerThread(app) as klaviyo:
            client = redis.Redis.from_url(server.url)
            facts = OrderFactsStore(client, PREFIX)
            loaded = time.monotonic()
            load(app.state.sandbox, facts, args.orders, since, now)
            loaded = time.monotonic() - loaded
            settings = Settings.model_validate({"key_prefix": PREFIX, "redis_url": server.url,
                                                "klaviyo_base_url": klaviyo.url, "rate_limit_scale": args.rate_scale})
            limiter = FleetRateLimiter(client, PREFIX, scale=args.rate_scale)
            clock = [now.timestamp()]

            def run() -> tuple[AttributionRun, float, int]:
                http = KlaviyoClient(klaviyo.url, "pk_bench_0123456789", "2026-10-15", limiter, "batch")
                reads = AttributionReads(http)
                flow = AttributionRun(settings, Mapping(), reads, AttributionCache(client, PREFIX), facts, None,
                                      clock=lambda: clock[0])
                began = time.monotonic()
                result = flow.run(since, None)
                http.close()
                return flow, time.monotonic() - began, result.report.orders

            first, first_s, in_period = run()
            second, second_s, _ = run()
            day: Counter[str] = Counter()
            for _ in range(args.runs_per_day):
                clock[0] += 86400 / args.runs_per_day
                flow, _, _ = run()
                day.update(flow.reads.requests)
            client.close()
    finally:
        server.stop()

    def spent(requests: Counter[str]) -> str:
        keys = ("metrics:get", "events:get", "campaign-values-reports", "flow-values-reports")
        return " | ".join(str(requests.get(key, 0)) for key in keys)

    values_day = day["campaign-values-reports"] + day["flow-values-reports"]
    block = "\n".join([
        f"`python -m bench.attribution --orders {args.orders} --months {args.months} --runs-per-day "
        f"{args.runs_per_day}` ({in_period} orders in the period, loaded in {loaded:.1f} s; request counts do not "
        f"depend on --rate-scale {args.rate_scale:g}):",
        "",
        "| run | metrics:get | events:get | campaign-values-reports | flow-values-reports | seconds |",
        "|---|---|---|---|---|---|",
        f"| first (nothing cached) | {spent(first.reads.requests)} | {first_s:.1f} |",
        f"| second, right after (only what changed) | {spent(second.reads.requests)} | {second_s:.1f} |",
        f"| a day of {args.runs_per_day} scheduled runs, together | {spent(day)} | |",
        "",
        f"Values reports in that day: {values_day} of Klaviyo's {VALUES_PER_DAY} a day "
        f"(the fleet's own cap {Settings.model_construct().attribution_values_daily_budget}).",
    ])
    print(block)
    if args.write:
        write_block(args.write, "bench-attribution", block)


if __name__ == "__main__":
    main()
