"""`bcsync metrics` during a short run: real fast and batch workers, a poller, the Klaviyo and Blue Cherry sandboxes,
and an httpx scrape (what Prometheus or curl does) that shows every metric family with non-zero values where work
happened - read from Redis by the one metrics process, whichever worker did the work."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from sandbox.bluecherry.app import create_app as bluecherry_app
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.server import ServerThread, free_port
from state.queue_ages import oldest_ages
from tests.integration.cli.test_flower import _listening_addresses
from tests.integration.delivery.test_fleet_delivery import (
    Fleet,
    fleet_factory,  # noqa: F401 - the real-workers fleet fixture
    profile_op,
)
from tests.integration.ops.test_freshness import Process
from tests.support.fleet import wait_for

pytestmark = pytest.mark.integration

KEY = "metrics-key"
PROFILE_IMPORT = "POST /api/profile-import"
# every family the endpoint must declare (the exposition's `# TYPE` lines)
FAMILIES = (
    "bcsync_deliveries", "bcsync_delivered_rows", "bcsync_delivery_latency_seconds", "bcsync_queue_depth",
    "bcsync_delayed_entries", "bcsync_dead_letters", "bcsync_exceptions_open", "bcsync_reconcile_differences",
    "bcsync_watermark_age_seconds", "bcsync_poller_last_read_age_seconds", "bcsync_queue_oldest_age_seconds",
    "bcsync_delayed_overdue_seconds", "bcsync_klaviyo_throttled", "bcsync_klaviyo_throttled_recent",
    "bcsync_limiter_budget_use_ratio", "bcsync_limiter_requests", "bcsync_limiter_cap", "bcsync_limiter_share",
    "bcsync_freshness_over", "bcsync_freshness_threshold", "bcsync_redis_up", "bcsync_dead_lettered",
)


@pytest.fixture
def bluecherry() -> Iterator[ServerThread]:
    with ServerThread(bluecherry_app(BlueCherrySandboxConfig(subscription_key=KEY, customers=3, styles=0,
                                                             orders=0))) as server:
        yield server


def samples(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """name -> {labels: value} of an exposition."""
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            out.setdefault(match.group(1), {})[labels] = float(match.group(3))
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get(name, {}).get(frozenset(labels.items()), 0.0)


def test_one_scrape_shows_the_whole_fleet(fleet_factory: Callable[..., Fleet], bluecherry: ServerThread) -> None:  # noqa: F811
    port = free_port("127.0.0.1")
    fleet = fleet_factory(BCSYNC_BLUECHERRY_BASE_URL=bluecherry.url, BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=KEY,
                          BCSYNC_METRICS_PORT=str(port), BCSYNC_QUEUE_AGE_MAX_DEFAULT_SECONDS="1",
                          BCSYNC_KLAVIYO_429_MAX="1", BCSYNC_FRESHNESS_CHECK_SECONDS="1")
    fast, batch = fleet.worker("fast"), fleet.worker("batch")
    poller = Process(["poller", "--once", "--resource", "customer"], fleet.env).start()
    metrics = Process(["metrics"], fleet.env).start()
    beat = Process(["beat"], fleet.env).start()  # the freshness check every second, on the fast lane
    fleet.workers += [poller, metrics, beat]  # stopped with the fleet
    assert fast and batch

    # delivered on two lanes by two worker processes
    fleet.submit([profile_op(n) for n in range(10)] + [profile_op(n, lane="batch") for n in range(10, 20)])
    wait_for(lambda: len(set(fleet.external_ids()) - {None}) >= 20, 60, message="20 profiles delivered")
    # a row Klaviyo refuses: a dead letter on the fast lane
    fleet.faults(reject_rules=[{"endpoint": PROFILE_IMPORT, "status": 400, "code": "invalid",
                                "detail": "The phone number provided is not valid.",
                                "pointer": "/data/attributes/phone_number"}])
    fleet.submit([profile_op(90)])
    wait_for(lambda: fleet.dead_letters() == 1, 60, message="a dead letter")
    # a 429 storm on profile-import: the fleet's envelopes wait in the delayed schedule and come back
    fleet.faults(reject_rules=[], throttle_rate=1.0, throttle_retry_after=1, endpoints=[PROFILE_IMPORT])
    fleet.submit([profile_op(n) for n in range(30, 33)])
    # work waiting on the default lane, which no worker here takes: the freshness check sees it lag
    fleet.submit([profile_op(n, lane="default") for n in range(40, 42)])
    wait_for(lambda: (oldest_ages(fleet.redis, fleet.prefix, ("default",), time.time())["default"] or 0) > 1.5, 30,
             message="the default lane's oldest message to age")

    def complete() -> dict | None:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        except httpx.ConnectError:
            return None
        found = samples(text)
        checks = {
            # a counter's TYPE line names it with its _total
            "families": all(f"# TYPE {family} " in text or f"# TYPE {family}_total " in text for family in FAMILIES),
            "redis": value(found, "bcsync_redis_up") == 1,
            "fast delivered": value(found, "bcsync_deliveries_total", lane="fast", kind="profile_upsert",
                                    outcome="delivered") >= 10,
            "batch delivered": value(found, "bcsync_deliveries_total", lane="batch", kind="profile_upsert",
                                     outcome="delivered") >= 10,
            # the refused operation: one attempt, one outcome (refused), and dead-lettered once, counted apart
            "dead-lettered": value(found, "bcsync_dead_lettered_total", lane="fast", kind="profile_upsert") == 1
            and value(found, "bcsync_deliveries_total", lane="fast", kind="profile_upsert", outcome="refused") == 1
            and 'outcome="dead_lettered"' not in text,
            "throttled": value(found, "bcsync_deliveries_total", lane="fast", kind="profile_upsert",
                               outcome="throttled") >= 1,
            "rows": value(found, "bcsync_delivered_rows_total", lane="fast") >= 10,
            "latency": value(found, "bcsync_delivery_latency_seconds_count", lane="fast") > 0
            and value(found, "bcsync_delivery_latency_seconds_bucket", lane="batch", le="+Inf") > 0,
            "depth": value(found, "bcsync_queue_depth", lane="default") == 2,
            "oldest": value(found, "bcsync_queue_oldest_age_seconds", lane="default") > 1,
            "delayed": value(found, "bcsync_delayed_entries", state="due")
            + value(found, "bcsync_delayed_entries", state="claimed") > 0,
            "dead letters": value(found, "bcsync_dead_letters", lane="fast") == 1,
            "exceptions": value(found, "bcsync_exceptions_open", type="lane_lagging", owner="operations") == 1
            and value(found, "bcsync_exceptions_open", type="klaviyo_throttled", owner="operations") == 1,
            "over": value(found, "bcsync_freshness_over", check="queue_age", subject="default",
                          type="lane_lagging") == 1,
            "watermark": value(found, "bcsync_watermark_age_seconds", resource="customer") > 0
            and value(found, "bcsync_poller_last_read_age_seconds", resource="customer") > 0,
            "429s": value(found, "bcsync_klaviyo_throttled_total", endpoint="profile-import") > 0
            and value(found, "bcsync_klaviyo_throttled_recent", endpoint="profile-import") > 0,
            "budget": value(found, "bcsync_limiter_requests", endpoint="profile-import", window="steady",
                            lanes="total") > 0
            and value(found, "bcsync_limiter_budget_use_ratio", endpoint="profile-import") > 0
            and value(found, "bcsync_limiter_share", endpoint="profile-import") > 0
            and value(found, "bcsync_limiter_cap", endpoint="profile-import", window="steady", lanes="total") > 0,
        }
        complete.missing = [name for name, ok in checks.items() if not ok]  # type: ignore[attr-defined]
        complete.exceptions = found.get("bcsync_exceptions_open")  # type: ignore[attr-defined]
        return found if not complete.missing else None  # type: ignore[attr-defined]

    try:
        wait_for(complete, 45, interval=0.5, message="every metric family with its values")
    except AssertionError:
        raise AssertionError(f"still missing: {complete.missing}; exceptions open: "  # type: ignore[attr-defined]
                             f"{complete.exceptions}") from None  # type: ignore[attr-defined]
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1 only, by default (not 0.0.0.0 or ::)
    # no reconciliation ran: its family is declared (above) with no difference
    assert not samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text).get(
        "bcsync_reconcile_differences")
