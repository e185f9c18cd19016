"""The whole fleet for one drill, from a clean state: a private AOF-backed Redis, both sandboxes (Blue Cherry
trading live), every lane's worker at concurrency >= 2, beat and the poller as real processes - plus what a
drill needs to watch it: quiescence, dead letters and exceptions by kind, peak worker RSS, the expected-state
oracle's diff.

Used by `bench/drills.py` and its short version in the test command (tests/integration/test_drills.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from config.celery import make_app
from config.lanes import LANES
from config.settings import Settings
from sandbox.bluecherry.app import create_app as create_bluecherry
from sandbox.bluecherry.catalog import STOREFRONT_CHANNEL
from sandbox.bluecherry.config import BlueCherrySandboxConfig, LiveRates
from sandbox.klaviyo.app import create_app as create_klaviyo
from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig
from sandbox.redis_server import PrivateRedis
from sandbox.server import ServerThread
from state.buffers import buffer_ages
from state.factory import stores  # the fleet's stores once configured_like points this process at it
from state.keys import RedisKeys
from testing.oracle import TenantRules, diff_state, expected_state
from tests.support.fleet import ROOT, WorkerProcess, configured_like, dialect_mapping, fleet_env, pending_work

BC_KEY = "drill-key"
POLL_SECONDS = 2.0
# Every resource polled every 2 s, so a drill's changes reach the fleet within seconds. Orders go under their
# storefront reference, and one channel's storefront sends its own Placed Order: the generated tenant has a few
# such orders without their reference (STOREFRONT_EVERY), whose events must wait (storefront_ref_missing).
MAPPING = "\n".join(f"[resources.{name}]\npoll_seconds = {POLL_SECONDS}\n" for name in (
    "customer", "order", "pick", "invoice", "creditmemo", "style", "inventory", "location")) + (
    f'[lifecycle]\nsales_channels = ["WEB", "POS", "{STOREFRONT_CHANNEL}"]\n'
    f'storefront_sends_placed = ["{STOREFRONT_CHANNEL}"]\nuse_storefront_ref = true\n')
STOREFRONT_EVERY = 5  # every 5th generated web order comes from the storefront, every second of those without ref
HOOKS = ("tests.support.handler_bug",)  # inert until a drill sets its Redis key


@dataclass(frozen=True)
class DrillSize:
    """How big a drill is: the seeded tenant, live trading, and the length of each phase."""

    customers: int
    styles: int
    orders: int
    warmup_seconds: float  # initial load and live trading before the fault
    fault_seconds: float  # how long the fault lasts (live trading goes on)
    quiet_seconds: float = 3 * POLL_SECONDS + 2  # nothing pending for this long = quiescent
    patience_seconds: float = 420.0  # the longest a drill waits for quiescence
    live_scale: float = 3.0  # live trading at this multiple of the sandbox's default rates


QUICK = DrillSize(customers=30, styles=4, orders=40, warmup_seconds=8, fault_seconds=12, patience_seconds=240)
FULL = DrillSize(customers=150, styles=12, orders=250, warmup_seconds=20, fault_seconds=60)


@dataclass
class Process:
    """One fleet process (`bcsync beat`, `bcsync poller`) with its log; stopped by its process group."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


class RssSampler(threading.Thread):
    """Peak resident memory of any one worker process (main or pool child), sampled every half second."""

    def __init__(self, fleet: DrillFleet) -> None:
        super().__init__(daemon=True)
        self.fleet = fleet
        self.peak_bytes = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for worker in list(self.fleet.workers.values()):
                if worker.process is None or worker.process.poll() is not None:
                    continue
                try:
                    main = psutil.Process(worker.pid)
                    for proc in (main, *main.children(recursive=True)):
                        self.peak_bytes = max(self.peak_bytes, proc.memory_info().rss)
                except psutil.Error:
                    continue


@dataclass
class Quiet:
    """What must hold, for `quiet_seconds` in a row, for the fleet to be done with a drill."""

    pending_messages: int
    in_flight_operations: int
    buffered: int
    klaviyo_jobs_pending: int
    klaviyo_counts: tuple[int, int, int]

    def idle(self) -> bool:
        return not (self.pending_messages or self.in_flight_operations or self.buffered or self.klaviyo_jobs_pending)


class DrillFleet:
    """Everything one drill runs on. Enter to start, leave to stop every process by its id."""

    def __init__(self, size: DrillSize, *, concurrency: int = 2, seed: int = 7,
                 settings: dict[str, str] | None = None, klaviyo_faults: dict[str, Any] | None = None,
                 dialect: str = "default", mapping: str = "") -> None:
        self.size = size
        self.mapping_overrides = mapping  # TOML laid over the drill's mapping (e.g. a short stock debounce)
        self.dialect = dialect  # the Blue Cherry tenant's dialect; the fleet reads it with that dialect's mapping
        self.klaviyo_faults = klaviyo_faults or {}  # in force from the first request (e.g. held-back upserts)
        self.overrides = settings or {}
        self.concurrency = concurrency
        self.seed = seed
        self.folder = Path(tempfile.mkdtemp(prefix="bcsync-drill-"))
        self.workers: dict[str, WorkerProcess] = {}
        self.starts: Counter[str] = Counter()
        self.processes: dict[str, Process] = {}
        self._stack = ExitStack()

    # --- start and stop ------------------------------------------------------------------------------
    def __enter__(self) -> DrillFleet:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        size = self.size
        self._stack.callback(shutil.rmtree, self.folder, True)
        self.redis_server = PrivateRedis.start(persistent=True)
        self._stack.callback(self.redis_server.stop)
        rates = LiveRates()
        rates.update({name: value * size.live_scale for name, value in rates.as_dict().items()
                      if name not in ("bursts", "burst_size")})
        bc_config = BlueCherrySandboxConfig(subscription_key=BC_KEY, seed=self.seed, customers=size.customers,
                                            styles=size.styles, orders=size.orders, history_days=120,
                                            live_rates=rates, storefront_every=STOREFRONT_EVERY,
                                            dialect=self.dialect)
        self.bc = self._stack.enter_context(ServerThread(create_bluecherry(bc_config)))
        self.klaviyo = self._stack.enter_context(
            ServerThread(create_klaviyo(KlaviyoSandboxConfig(
                seed=self.seed, job_step_seconds=0.1, faults=FaultSettings().merged(self.klaviyo_faults)))))
        self.mapping_file = self.folder / "mapping.toml"
        self.mapping_file.write_text(dialect_mapping(MAPPING + self.mapping_overrides, self.dialect))
        self.env = fleet_env(
            self.redis_server.url, self.klaviyo.url,
            BCSYNC_BLUECHERRY_BASE_URL=self.bc.url, BCSYNC_BLUECHERRY_SUBSCRIPTION_KEY=BC_KEY,
            BCSYNC_MAPPING_FILE=str(self.mapping_file), BCSYNC_POLL_START="2000-01-01 00:00:00",
            BCSYNC_POLLER_LOCK_TTL_SECONDS="6",
            # production-like backoff, short enough for a drill: 1, 2, 4 ... 60 s, dead letter after max_attempts
            BCSYNC_BACKOFF_BASE_SECONDS="1", BCSYNC_BACKOFF_MAX_SECONDS="60",
            BCSYNC_KLAVIYO_TIMEOUT_SECONDS="4", BCSYNC_BLUECHERRY_TIMEOUT_SECONDS="5",
            BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="12", BCSYNC_TASK_TIME_LIMIT_SECONDS="15",
            **self.overrides,
        )
        self.prefix = self.env["BCSYNC_KEY_PREFIX"]
        self.settings = Settings.model_validate(
            {k[len("BCSYNC_"):].lower(): v for k, v in self.env.items() if k.startswith("BCSYNC_")})
        self.app = make_app(self.settings)
        self.redis = redis.Redis.from_url(self.redis_server.url, decode_responses=True)
        self._stack.enter_context(configured_like(self.env, self.app))
        self._stack.callback(self._stop_processes)
        for lane in LANES:
            self.start_worker(lane)
        self.processes["beat"] = self._process("beat", "beat").start()
        self.processes["poller"] = self._process("poller", "poller").start()
        self.rss = RssSampler(self)
        self.rss.start()
        self._stack.callback(self.rss.stopping.set)

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _process(self, name: str, *args: str) -> Process:
        return Process(name, [sys.executable, "-m", "workers.cli", *args], self.env, self.folder / f"{name}.log")

    def start_worker(self, lane: str) -> WorkerProcess:
        self.starts[lane] += 1
        worker = WorkerProcess(lane, self.env, concurrency=self.concurrency, include=HOOKS,
                               log=self.folder / f"worker-{lane}-{self.starts[lane]}.log")
        self.workers[lane] = worker.start()
        return worker

    def restart_process(self, name: str) -> None:
        self.processes[name] = self._process(name, name).start()

    def _stop_processes(self) -> None:
        for worker in self.workers.values():
            worker.stop()
        for process in self.processes.values():
            process.stop()

    # --- the sandboxes -------------------------------------------------------------------------------
    def bluecherry(self, path: str, body: Any = None) -> Any:
        method = "POST" if body is not None else "GET"
        r = httpx.request(method, f"{self.bc.url}/_sandbox/{path}", json=body, timeout=60)
        r.raise_for_status()
        return r.json()

    def klaviyo_control(self, path: str, body: Any = None) -> Any:
        method = "POST" if body is not None else "GET"
        r = httpx.request(method, f"{self.klaviyo.url}/_sandbox/{path}", json=body, timeout=60)
        r.raise_for_status()
        return r.json()

    def live(self, running: bool) -> None:
        self.bluecherry("live", {"running": running})

    # --- watching ------------------------------------------------------------------------------------
    def quiet_sample(self) -> Quiet:
        summary = self.klaviyo_control("state?summary=1")["counts"]
        return Quiet(
            pending_messages=pending_work(self.redis, self.prefix),
            in_flight_operations=stores().inflight.count(),
            buffered=sum(age.items for age in buffer_ages(stores()).values()),
            klaviyo_jobs_pending=int(summary["jobs_pending"]),
            klaviyo_counts=(int(summary["profiles"]), int(summary["events"]), int(summary["catalog_variants"])),
        )

    def stuck_work(self, limit: int = 5) -> str:
        """What keeps the fleet from quiescence, for a drill's failure message: lanes, unacknowledged messages,
        the delayed schedule's tasks and the operations in flight with their holders."""
        r, keys, now = self.redis, RedisKeys(self.prefix), time.time()
        lanes = {lane: int(r.llen(keys.queue(lane))) + int(r.llen(keys.queue_taking(lane))) for lane in LANES}
        due = r.zrange(keys.delayed_due, 0, limit - 1, withscores=True)
        bodies = r.hmget(keys.delayed_payload, [d for d, _ in due]) if due else []
        delayed = [f"{str(body or '')[:160]} in {score - now:.0f} s"
                   for (_, score), body in zip(due, bodies, strict=True)]
        held = list(r.hscan_iter(keys.inflight_operations, count=100))[:limit]
        return (f"lanes {lanes}; unacked {r.hlen(f'{self.prefix}:broker:unacked')}; delayed "
                f"{r.zcard(keys.delayed_due)} {delayed}; in flight {r.hlen(keys.inflight_operations)} {held}")

    def wait_quiescent(self) -> float | None:
        """Seconds until the fleet was last busy, once nothing has been pending (and Klaviyo has not changed)
        for `quiet_seconds`; None when that did not happen within `patience_seconds`."""
        started = time.monotonic()
        deadline = started + self.size.patience_seconds
        last_busy = started
        previous: Quiet | None = None
        while time.monotonic() < deadline:
            try:
                sample = self.quiet_sample()
            except (redis.RedisError, httpx.HTTPError):
                sample = None
            now = time.monotonic()
            if sample is None or not sample.idle() or (previous and sample.klaviyo_counts != previous.klaviyo_counts):
                last_busy = now
            elif now - last_busy >= self.size.quiet_seconds:
                return round(last_busy - started, 1)
            previous = sample
            time.sleep(0.5)
        return None

    def dead_letters_by_kind(self) -> Counter[str]:
        return Counter(entry.task.removeprefix("bcsync.") if entry.is_task else entry.kind
                       for entry in stores().dead_letters.list())

    def exceptions_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = stores().exceptions.counts()
        return counts

    def requeue_dead_letters(self) -> str:
        """`bcsync dlq requeue --lane L --all` for every lane, as an operator would once the cause is fixed."""
        said = []
        for lane in LANES:
            done = subprocess.run([sys.executable, "-m", "workers.cli", "dlq", "requeue", "--lane", lane, "--all"],
                                  cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"bcsync dlq requeue --lane {lane} --all failed:\n{done.stdout}\n{done.stderr}")
            said.append(f"{lane}: {done.stdout.strip()}")
        return "; ".join(said)

    def oracle_diff(self) -> Any:
        dump = self.bluecherry("dump")
        state = self.klaviyo_control("state")
        return diff_state(expected_state(dump, TenantRules.from_toml(self.mapping_file)), state)
