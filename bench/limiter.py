"""The fleet limiter against the Klaviyo sandbox on an account it shares: how much of the ceiling it takes, how
many 429s it meets, and how long fast work waits for budget.

    .venv/bin/python -m bench.limiter                     # ~7 minutes: 3 with another integration, 3 alone
    .venv/bin/python -m bench.limiter --background 0.3 --phase 17.4 --with-minutes 3 --alone-minutes 3 \
        --threads 6 --rate-scale 0.1 --floor 0.5          # the defaults, spelled out
    .venv/bin/python -m bench.limiter --acquire-cost      # what one acquire costs, one thread, loopback Redis

The limiter alone, not the delivery engine: `--threads` threads each send single events
(`POST /api/events`, XL) through a `KlaviyoClient` on the default lane as fast as the fleet limiter lets them
(a `RateLimitedLocally` sleeps its delay, as the delayed schedule would; a 429 sleeps its Retry-After), and one
fast-lane thread sends an event every 2 s and times how long it waited for budget. Everything is real: a
private redis-server, the sandbox as a subprocess with Klaviyo's numbers times `--rate-scale`, its windows
shifted by `--phase` seconds from the fleet's clock, and first `--background` of every window used by another
integration (the sandbox's background consumer), then none. The fleet's share starts at `--floor`
(`BCSYNC_RATE_SHARE`; with another integration on the account the default 0.8 would leave it too little) and
may grow to 1.0.

Counted per Klaviyo minute (the sandbox's, `--phase` after the epoch's): the fleet's accepted requests as a
percent of Klaviyo's ceiling, the other integration's, 429s, the fleet's share at the minute's end. At the end
per phase, from its second minute on: the fleet's average and lowest percent of the ceiling, 429s per 1,000
requests, the fast lane's longest and 99th-percentile wait.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field

import httpx
import redis as redis_lib

from bench.delivery import KlaviyoSandboxProcess
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import RateLimitedLocally, ThrottledError
from connectors.klaviyo.limiter import FleetRateLimiter
from sandbox.redis_server import PrivateRedis

ENDPOINT = "events"
SANDBOX_KEY = "POST /api/events"
PREFIX = "bench"


@dataclass
class Phase:
    name: str
    background: float
    minutes: int
    rows: list[tuple[int, int, int, float]] = field(default_factory=list)  # fleet, other, 429s, share per minute
    fast_waits: list[float] = field(default_factory=list)


def event(i: int) -> dict[str, object]:
    return {"metric": "Bench", "profile": {"email": f"b{i % 500}@example.com"}, "properties": {},
            "unique_id": f"u{i}-{time.time_ns()}"}


def sender(client: KlaviyoClient, stop: threading.Event, counter: list[int]) -> None:
    while not stop.is_set():
        counter[0] += 1
        try:
            client.create_event(event(counter[0]))
        except RateLimitedLocally as exc:
            stop.wait(exc.delay)
        except ThrottledError as exc:
            stop.wait(exc.retry_after or 1.0)


def fast_sender(client: KlaviyoClient, stop: threading.Event, phase: list[Phase]) -> None:
    i = 0
    while not stop.is_set():
        i += 1
        wanted = time.monotonic()
        while not stop.is_set():
            try:
                client.create_event(event(10**9 + i))
                break
            except RateLimitedLocally as exc:
                stop.wait(exc.delay)
            except ThrottledError as exc:
                stop.wait(exc.retry_after or 1.0)
        phase[0].fast_waits.append(time.monotonic() - wanted)
        stop.wait(2.0)


def sandbox_counts(url: str) -> tuple[int, int, int]:
    stats = httpx.get(f"{url}/_sandbox/stats", timeout=30).json()["endpoints"].get(SANDBOX_KEY, {})
    return int(stats.get("accepted", 0)), int(stats.get("background", 0)), int(stats.get("throttled", 0))


def acquire_cost(calls: int = 20_000) -> None:
    """Slots taken one after another from one thread (limits far above the pace, so every call takes one)."""
    private = PrivateRedis.start()
    try:
        limiter = FleetRateLimiter(redis_lib.Redis.from_url(private.url), PREFIX, scale=1000.0)
        for _ in range(500):  # warm: scripts loaded, connection open
            limiter.try_acquire(ENDPOINT, "default", inline_wait=1.5)
        start = time.perf_counter()
        for _ in range(calls):
            limiter.try_acquire(ENDPOINT, "default", inline_wait=1.5)
        seconds = time.perf_counter() - start
        print(f"try_acquire: {calls} calls in {seconds:.2f} s from one thread: {calls / seconds:,.0f} per second, "
              f"{1000 * seconds / calls:.3f} ms each")
    finally:
        private.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--background", type=float, default=0.3)
    parser.add_argument("--phase", type=float, default=17.4)
    parser.add_argument("--with-minutes", type=int, default=3)
    parser.add_argument("--alone-minutes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=6)
    parser.add_argument("--rate-scale", type=float, default=0.1)
    parser.add_argument("--floor", type=float, default=0.5)
    parser.add_argument("--acquire-cost", action="store_true", help="only time try_acquire, then stop")
    args = parser.parse_args()
    if args.acquire_cost:
        acquire_cost()
        return

    private = PrivateRedis.start()
    sandbox = KlaviyoSandboxProcess(args.rate_scale).start()
    stop = threading.Event()
    clients: list[KlaviyoClient] = []
    try:
        httpx.post(f"{sandbox.url}/_sandbox/faults", timeout=10, json={
            "background_share": args.background, "window_phase_seconds": args.phase}).raise_for_status()
        redis = redis_lib.Redis.from_url(private.url)

        def limiter() -> FleetRateLimiter:
            return FleetRateLimiter(redis_lib.Redis.from_url(private.url), PREFIX, share=args.floor,
                                    scale=args.rate_scale)

        ceiling = limiter().klaviyo_limits(ENDPOINT)[1]
        phases = [Phase("with another integration", args.background, args.with_minutes),
                  Phase("alone", 0.0, args.alone_minutes)]
        current = [phases[0]]
        threads = []
        for i in range(args.threads + 1):
            client = KlaviyoClient(sandbox.url, "pk_bench", "2026-10-15", limiter(), "fast" if i == 0 else "default")
            clients.append(client)
            target = (fast_sender, (client, stop, current)) if i == 0 else (sender, (client, stop, [i * 10**7]))
            threads.append(threading.Thread(target=target[0], args=target[1], daemon=True))
        watch = limiter()

        def next_minute() -> None:  # just past the end of the sandbox's current minute
            time.sleep(60 - (time.time() - args.phase) % 60 + 0.3)

        next_minute()
        for thread in threads:
            thread.start()
        for phase in phases:
            current[0] = phase
            httpx.post(f"{sandbox.url}/_sandbox/faults", timeout=10,
                       json={"background_share": phase.background}).raise_for_status()
            last = sandbox_counts(sandbox.url)
            for minute in range(phase.minutes):
                next_minute()
                now = sandbox_counts(sandbox.url)
                fleet, other, throttled = (b - a for a, b in zip(last, now, strict=True))
                share = watch.current_share(ENDPOINT)
                phase.rows.append((fleet, other, throttled, share))
                print(f"{phase.name:>26} minute {minute + 1}: fleet {100 * fleet / ceiling:5.1f}% other "
                      f"{100 * other / ceiling:5.1f}% of {ceiling}/min, 429s {throttled:3d}, share {share:.3f}",
                      flush=True)
                last = now
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        print()
        for phase in phases:
            settled = phase.rows[1:]
            accepted = sum(row[0] for row in settled)
            throttled = sum(row[2] for row in settled)
            waits = sorted(phase.fast_waits)
            p99 = waits[min(len(waits) - 1, int(len(waits) * 0.99))] if waits else 0.0
            mean = 100 * accepted / max(1, len(settled)) / ceiling
            lowest = 100 * min((row[0] for row in settled), default=0) / ceiling
            per_1000 = 1000 * throttled / max(1, accepted + throttled)
            print(f"{phase.name}: from its second minute the fleet took {mean:.1f}% of the ceiling ({ceiling}/min) "
                  f"on average, {lowest:.1f}% at least; 429s per 1,000 requests {per_1000:.2f}; fast waits: max "
                  f"{max(waits, default=0):.2f} s, p99 {p99:.2f} s ({len(waits)} sends)")
        redis.close()
    finally:
        stop.set()
        for client in clients:
            client.close()
        sandbox.stop()
        private.stop()


if __name__ == "__main__":
    main()
