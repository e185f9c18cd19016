"""The faults of `bench/drills.py`: each is switched on, kept on for the drill's fault window (live trading goes
on), then lifted. A transient fault must leave no dead letter; the others leave dead letters that
`bcsync dlq requeue` delivers once the fault is gone."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.drill_fleet import DrillFleet
from config.lanes import LANES
from tests.support.fleet import wait_for


def _nothing(fleet: DrillFleet) -> None:
    return None


def _each_second(fleet: DrillFleet, elapsed: float) -> None:
    return None


@dataclass(frozen=True)
class Drill:
    name: str
    what: str
    transient: bool  # True: the fleet must ride it out with no dead letter
    start: Callable[[DrillFleet], None] = _nothing
    stop: Callable[[DrillFleet], None] = _nothing
    during: Callable[[DrillFleet, float], None] = _each_second  # called about once a second while it lasts
    length: float = 1.0  # the fault window, as a multiple of the size's fault_seconds
    settings: tuple[tuple[str, str], ...] = ()  # BCSYNC_ settings of this drill's fleet


def _klaviyo_faults(**settings: object) -> Callable[[DrillFleet], None]:
    def apply(fleet: DrillFleet) -> None:
        fleet.klaviyo_control("faults", {"clear": True, **settings})

    return apply


def _clear_klaviyo(fleet: DrillFleet) -> None:
    fleet.klaviyo_control("faults", {"clear": True})


def _bluecherry_faults(**settings: object) -> Callable[[DrillFleet], None]:
    def apply(fleet: DrillFleet) -> None:
        fleet.bluecherry("faults", dict(settings))

    return apply


def _kill_workers_in_flight(fleet: DrillFleet) -> None:
    """Klaviyo answers slowly, so deliveries are in flight; once some are, SIGKILL every worker process (main
    and pool children), and start new ones a few seconds later."""
    fleet.klaviyo_control("faults", {"clear": True, "latency_ms": 400})

    def in_flight() -> bool:
        return fleet.quiet_sample().pending_messages > 0

    wait_for(in_flight, timeout=20, interval=0.1, message="deliveries in flight")
    for worker in fleet.workers.values():
        worker.kill_group()
    time.sleep(3)
    for lane in LANES:
        fleet.start_worker(lane)


def _kill_poller_mid_page(fleet: DrillFleet) -> None:
    """Every page is slow, so the poller is mid-page when it is SIGKILLed; a new poller starts 2 s later."""
    fleet.bluecherry("faults", {"slow_rate": 1.0, "slow_seconds": 1.5})
    time.sleep(2.5)
    fleet.processes["poller"].kill()
    time.sleep(2)
    fleet.restart_process("poller")


def _restart_redis(fleet: DrillFleet) -> None:
    """The AOF-backed Redis goes away for 3 s and comes back with what it had; nothing is restarted."""
    fleet.redis_server.halt()
    time.sleep(3)
    fleet.redis_server.resume()


def _bluecherry_bursts(fleet: DrillFleet, elapsed: float) -> None:
    """Five seconds of 5xx on every request, five seconds of service, and so on."""
    fleet.bluecherry("faults", {"rate_5xx": 1.0 if int(elapsed) // 5 % 2 == 0 else 0.0, "status_5xx": 503})


def _handler_bug(on: bool) -> Callable[[DrillFleet], None]:
    def switch(fleet: DrillFleet) -> None:
        key = f"{fleet.prefix}:test:handler-bug"
        fleet.redis.set(key, "1") if on else fleet.redis.delete(key)

    return switch


CONSENT_LOOKUP_REFUSED = {"endpoint": "GET /api/profiles", "status": 403, "code": "permission_denied",
                          "detail": "The API key does not have the profiles:read scope (drill)"}

DRILLS: dict[str, Drill] = {drill.name: drill for drill in (
    Drill("no_fault", "live trading, no fault", transient=True),
    Drill("worker_sigkill", "SIGKILL of every worker with deliveries in flight (Klaviyo latency 400 ms), restart",
          transient=True, start=_kill_workers_in_flight, stop=_clear_klaviyo),
    Drill("poller_sigkill", "SIGKILL of the poller mid-page (every page slow), restart", transient=True,
          start=_kill_poller_mid_page, stop=_bluecherry_faults(slow_rate=0.0)),
    Drill("redis_restart", "Redis (AOF) stopped for 3 s and restarted mid-run; nothing else restarted",
          transient=True, start=_restart_redis),
    Drill("klaviyo_5xx", "Klaviyo answers 30% of requests with 500/502/503", transient=True,
          start=_klaviyo_faults(error_rates={"500": 0.1, "502": 0.1, "503": 0.1}), stop=_clear_klaviyo),
    Drill("klaviyo_unreachable", "Klaviyo unreachable (every connection closed unanswered)", transient=True,
          start=_klaviyo_faults(drop_rate=1.0), stop=_clear_klaviyo),
    Drill("klaviyo_429_storm", "every Klaviyo request 429 with Retry-After: 30", transient=True,
          start=_klaviyo_faults(throttle_rate=1.0, throttle_retry_after=30), stop=_clear_klaviyo, length=1.5),
    Drill("bluecherry_hung", "Blue Cherry holds every request unanswered", transient=True,
          start=_bluecherry_faults(hang=1), stop=_bluecherry_faults(hang=0)),
    Drill("bluecherry_5xx_bursts", "Blue Cherry 503 on every request, 5 s on / 5 s off", transient=True,
          during=_bluecherry_bursts, stop=_bluecherry_faults(rate_5xx=0.0)),
    Drill("consent_lookup_403", "Klaviyo refuses the consent lookup (GET /api/profiles) with 403", transient=False,
          start=_klaviyo_faults(reject_rules=[CONSENT_LOOKUP_REFUSED]), stop=_clear_klaviyo),
    Drill("handler_bug", "a bug in the order handler (test-only hook) until 'deployed fixed'", transient=False,
          start=_handler_bug(True), stop=_handler_bug(False),
          # a bug that outlasts the retries (1 + 2 + 4 s): dead letters, requeued once the fix is deployed
          settings=(("BCSYNC_MAX_ATTEMPTS", "4"),)),
)}
QUICK_DRILLS = ("no_fault", "worker_sigkill", "klaviyo_5xx")
