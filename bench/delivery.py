"""Events per second through the lanes into the Klaviyo sandbox, with Klaviyo's limits off and on.

    .venv/bin/python -m bench.delivery                       # both runs, ~3 minutes on 2 cores
    .venv/bin/python -m bench.delivery --events 1200 --bulk-events 15000 --workers 1 --concurrency 2 \
        --seconds 60 --rate-scale 0.1                        # the defaults, spelled out

Everything is real: a private redis-server (sandbox.redis_server.PrivateRedis), the Klaviyo sandbox as a
subprocess (`python -m workers.cli sandbox klaviyo`), and `bcsync worker --lane L` subprocesses configured
through the environment like production. The bench process only publishes messages (the producers' own
`delivery.envelope.group_for_delivery`) and reads the sandbox's `/_sandbox/stats`.

Run (a), limits off: the fleet's own ceiling. Single events (one `event` operation per message) on the
default lane -> `POST /api/events`; then bulk events on the batch lane (1,000 per message) ->
`POST /api/event-bulk-create-jobs`. The rate is measured from the first event the sandbox stored to the
last, so worker start-up and publishing are not counted.

Run (b), limits on: the sandbox enforces Klaviyo's numbers times `--rate-scale` and the fleet is given the
same scale (with its defaults: share 0.8, fast reserve 0.25, so the default and batch lanes may take 60% of
Klaviyo's numbers). A feeder keeps both lanes' backlogs full at once. The default scale is 0.1 (350 single
events/min, 15 bulk jobs/min): at Klaviyo's own numbers (`--rate-scale 1`) the two lanes together need more
CPU than this 2-core machine has, and the run measures the machine rather than the limiter.
Klaviyo's windows are aligned minutes, and a budget is spent early in a window, so the
measure covers whole windows only: from the first minute boundary after the load starts, for `--seconds`
(rounded up to whole minutes). Reported: accepted events per minute as a percent of Klaviyo's ceiling
(3,500/min single; 150 jobs/min x 1,000 bulk) and of the lane's own fleet budget, and the 429s the
sandbox answered during the whole run.

Every process started here is stopped by its pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis as redis_lib
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]

from config.celery import make_app  # noqa: E402
from config.settings import Settings  # noqa: E402
from config.task_names import deliver_task  # noqa: E402
from connectors.klaviyo.limiter import lane_caps  # noqa: E402
from delivery.packing import group_for_delivery  # noqa: E402
from sandbox.redis_server import PrivateRedis  # noqa: E402
from sandbox.server import free_port  # noqa: E402
from sync.operations import Operation  # noqa: E402
from tests.support.fleet import WorkerProcess, fleet_env, wait_for  # noqa: E402

SINGLE = "POST /api/events"
BULK = "POST /api/event-bulk-create-jobs"
BULK_SIZE = 1000
# Klaviyo's tiers (docs/klaviyo-client.md): events XL 350/s 3500/min; event bulk jobs M 10/s 150/min.
KLAVIYO_STEADY = {SINGLE: 3500, BULK: 150}
EVENTS_PER_REQUEST = {SINGLE: 1, BULK: BULK_SIZE}
LANE_OF = {SINGLE: "default", BULK: "batch"}
SAMPLE_SECONDS = 0.25
console = Console(width=max(shutil.get_terminal_size().columns, 160))


# --- processes ------------------------------------------------------------------------------------


@dataclass
class KlaviyoSandboxProcess:
    """`python -m workers.cli sandbox klaviyo` on a free port, stopped by its pid."""

    rate_scale: float | None  # None = limits off
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(prefix="bench-klaviyo-", suffix=".log")[1]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> KlaviyoSandboxProcess:
        limits = ["--no-rate-limits"] if self.rate_scale is None else ["--rate-scale", str(self.rate_scale)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "sandbox", "klaviyo", "--port", str(self.port), *limits],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for(self._ready, 60, 0.1, "the Klaviyo sandbox to answer")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"Klaviyo sandbox exited:\n{self.log.read_text(errors='replace')[-2000:]}")
        try:
            return httpx.get(f"{self.url}/_sandbox/stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_sandbox/stats", timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.unlink(missing_ok=True)


@dataclass
class Fleet:
    sandbox: KlaviyoSandboxProcess
    env: dict[str, str]
    workers: list[WorkerProcess]

    def publish(self, operations: list[Operation]) -> int:
        """Publish exactly as producers do (`delivery.envelope.group_for_delivery`), with the workers' settings."""
        settings = Settings(**{k[len("BCSYNC_"):].lower(): v for k, v in self.env.items()  # type: ignore[arg-type]
                               if k.startswith("BCSYNC_")})
        app = make_app(settings)
        envelopes = group_for_delivery(operations)
        with app.producer_or_acquire() as producer:
            for env in envelopes:
                app.send_task(deliver_task(env["kind"]), args=[env], queue=env["lane"], producer=producer)
        return len(envelopes)


@contextmanager
def fleet(redis: PrivateRedis, rate_scale: float | None, workers: int, concurrency: int) -> Iterator[Fleet]:
    """A sandbox and `workers` worker processes per lane (default, batch); all stopped on the way out."""
    with ExitStack() as stack:
        sandbox = KlaviyoSandboxProcess(rate_scale)
        stack.callback(sandbox.stop)
        sandbox.start()
        env = fleet_env(
            redis.url, sandbox.url,
            BCSYNC_RATE_LIMIT_SCALE=str(rate_scale or 1.0),
            BCSYNC_WORKER_CONCURRENCY=str(concurrency),
            # a bulk job of 1,000 events on a busy 2-core machine must not hit the tests' short limits
            BCSYNC_VISIBILITY_TIMEOUT_SECONDS="300",
            BCSYNC_TASK_SOFT_TIME_LIMIT_SECONDS="120",
            BCSYNC_TASK_TIME_LIMIT_SECONDS="180",
        )
        started = [WorkerProcess(lane, env, concurrency) for lane in ("default", "batch") for _ in range(workers)]
        for worker in started:
            stack.callback(worker.stop)  # registered first: a worker that fails to start is still stopped
        with ThreadPoolExecutor(len(started)) as pool:  # start them side by side: each takes seconds
            list(pool.map(WorkerProcess.start, started))
        yield Fleet(sandbox, env, started)


# --- load -----------------------------------------------------------------------------------------


def event_operations(count: int, lane: str, run: str) -> list[Operation]:
    """`event` operations (sync/operations.py payload) with unique ids; ~5 events per shopper."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    ops = []
    for n in range(count):
        unique_id = f"{run}-{lane}-{n}"
        ops.append(Operation(
            kind="event", key=f"event:Ordered Product:{unique_id}", lane=lane, record=f"order:SO{n // 3}",
            payload={
                "metric": "Ordered Product",
                "profile": {"email": f"shopper{n // 5}@example.com"},
                "properties": {"OrderId": f"SO{n // 3}", "SKU": f"STYLE{n % 97}-BLK-M", "Quantity": 1},
                "time": now, "value": 49.5, "value_currency": "USD", "unique_id": unique_id, "backfill": False,
            },
        ))
    return ops


@dataclass
class Sample:
    at: float
    stored: int
    endpoints: dict[str, dict[str, Any]]

    def accepted(self, endpoint: str) -> int:
        """Events Klaviyo (the sandbox) took on this endpoint: 202s times events per request."""
        statuses = self.endpoints.get(endpoint, {}).get("statuses", {})
        return int(statuses.get("202", 0)) * EVENTS_PER_REQUEST[endpoint]

    def throttled(self, endpoint: str) -> int:
        return int(self.endpoints.get(endpoint, {}).get("throttled", 0))


def sample(sandbox: KlaviyoSandboxProcess) -> Sample:
    stats = sandbox.stats()
    return Sample(time.time(), int(stats["events_stored"]), stats["endpoints"])


@dataclass
class Row:
    run: str
    lane: str
    endpoint: str
    events: int
    seconds: float
    klaviyo_per_minute: float | None = None
    budget_per_minute: float | None = None
    throttled: int = 0

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# --- run (a): limits off ----------------------------------------------------------------------------


def ceiling(f: Fleet, endpoint: str, count: int, timeout: float) -> Row:
    """Publish `count` events on the endpoint's lane; rate from the first stored event to the last."""
    before = sample(f.sandbox).stored
    lane = LANE_OF[endpoint]
    f.publish(event_operations(count, lane, uuid.uuid4().hex[:6]))
    first: Sample | None = None
    deadline = time.monotonic() + timeout
    while True:
        now = sample(f.sandbox)
        if first is None and now.stored > before:
            first = now
        if now.stored - before >= count or time.monotonic() > deadline:
            break
        time.sleep(SAMPLE_SECONDS)
    if first is None:
        raise RuntimeError(f"no event reached the sandbox on {endpoint} within {timeout:.0f}s")
    if now.stored - before < count:
        console.print(f"[yellow]{endpoint}: only {now.stored - before} of {count} events within {timeout:.0f}s")
    return Row("a: limits off", lane, endpoint, now.stored - first.stored, now.at - first.at,
               throttled=now.throttled(endpoint))


# --- run (b): limits on -----------------------------------------------------------------------------


def lane_budget(endpoint: str, scale: float, settings: Settings) -> tuple[int, int]:
    """(Klaviyo's steady limit as the sandbox enforces it, the lane's fleet cap per minute) after scaling."""
    klaviyo = max(1, math.ceil(KLAVIYO_STEADY[endpoint] * scale - 1e-9))  # the sandbox rounds up
    fleet_limit = max(1, math.floor(KLAVIYO_STEADY[endpoint] * scale))  # the fleet rounds down
    caps = lane_caps(fleet_limit, settings.rate_share, settings.fast_reserve, settings.batch_ceiling)
    lane_cap = caps.batch if LANE_OF[endpoint] == "batch" else caps.non_fast
    return klaviyo, lane_cap


def sample_at(sandbox: KlaviyoSandboxProcess, moment: float) -> Sample:
    time.sleep(max(0.0, moment - time.time()))
    return sample(sandbox)


class Feeder(threading.Thread):
    """Keeps every lane's backlog at `targets[endpoint]` events not yet accepted by the sandbox, so a lane
    never idles for want of work, without publishing (and holding in memory) hours of backlog."""

    def __init__(self, f: Fleet, targets: dict[str, int]) -> None:
        super().__init__(name="bench-feeder", daemon=True)
        self.fleet, self.targets = f, targets
        self.published = dict.fromkeys(targets, 0)
        self.run_id = uuid.uuid4().hex[:6]
        self.stopping = threading.Event()
        self.fed = threading.Event()  # set once every lane got its first backlog
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                now = sample(self.fleet.sandbox)
                for endpoint, target in self.targets.items():
                    missing = target - (self.published[endpoint] - now.accepted(endpoint))
                    size = EVENTS_PER_REQUEST[endpoint]
                    count = math.ceil(missing / size) * size if missing > 0 else 0
                    if count:
                        lane = LANE_OF[endpoint]
                        self.fleet.publish(event_operations(
                            count, lane, f"{self.run_id}-{self.published[endpoint]}"))
                        self.published[endpoint] += count
                self.fed.set()
                self.stopping.wait(0.5)
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            self.fed.set()


def limited(f: Fleet, scale: float, seconds: float) -> list[Row]:
    """Saturate both lanes and count what got through in whole aligned minutes."""
    settings = Settings(rate_limit_scale=scale)
    minutes = max(1, math.ceil(seconds / 60))
    budgets = {endpoint: lane_budget(endpoint, scale, settings) for endpoint in (SINGLE, BULK)}
    # backlog: one minute of the lane's budget for single events (a window's budget is spent as it opens);
    # for bulk jobs 10 s worth of the lane's minute budget, 2 to 20 jobs (a job takes the fleet ~1 s)
    targets = {SINGLE: budgets[SINGLE][1], BULK: BULK_SIZE * max(2, min(20, budgets[BULK][1] // 6))}
    feeder = Feeder(f, targets)
    feeder.start()
    try:
        feeder.fed.wait()
        if feeder.error:
            raise feeder.error
        first_boundary = (math.floor(time.time() / 60) + 1) * 60
        console.print(f"  backlog kept at {targets[SINGLE]:,} single and {targets[BULK]:,} bulk events; measuring "
                      f"{minutes} whole minute(s) from {time.strftime('%H:%M:%S', time.localtime(first_boundary))}")
        # the counters just before a boundary: a saturated lane has spent that window's budget by then
        begin = sample_at(f.sandbox, first_boundary - 0.1)
        end = sample_at(f.sandbox, first_boundary + 60 * minutes - 0.1)
    finally:
        feeder.stopping.set()
        feeder.join(timeout=60)
    if feeder.error:
        raise feeder.error
    rows = []
    for endpoint in (SINGLE, BULK):
        klaviyo, lane_cap = budgets[endpoint]
        per_request = EVENTS_PER_REQUEST[endpoint]
        rows.append(Row(
            f"b: limits on x{scale:g}", LANE_OF[endpoint], endpoint,
            end.accepted(endpoint) - begin.accepted(endpoint), 60.0 * minutes,
            klaviyo_per_minute=klaviyo * per_request, budget_per_minute=lane_cap * per_request,
            throttled=end.throttled(endpoint),
        ))
    return rows


def flush(redis: PrivateRedis) -> None:
    client = redis_lib.Redis.from_url(redis.url)
    client.flushall()
    client.close()


# --- report ---------------------------------------------------------------------------------------


def percent(part: float, whole: float | None) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def table(rows: list[Row]) -> Table:
    t = Table(title="bcsync delivery benchmark: events into the Klaviyo sandbox")
    for name in ("run", "lane", "endpoint", "events counted", "seconds", "events/s", "events/min",
                 "Klaviyo ceiling/min", "% of Klaviyo", "lane budget/min", "% of budget", "429s"):
        t.add_column(name, justify="left" if name in ("run", "lane", "endpoint") else "right")
    for r in rows:
        per_minute = r.per_second * 60
        t.add_row(
            r.run, r.lane, r.endpoint.removeprefix("POST /api/"), f"{r.events:,}", f"{r.seconds:.1f}",
            f"{r.per_second:,.1f}",
            f"{per_minute:,.0f}", f"{r.klaviyo_per_minute:,.0f}" if r.klaviyo_per_minute else "-",
            percent(per_minute, r.klaviyo_per_minute),
            f"{r.budget_per_minute:,.0f}" if r.budget_per_minute else "-",
            percent(per_minute, r.budget_per_minute), str(r.throttled),
        )
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1200, help="single events in run (a) (default lane)")
    parser.add_argument("--bulk-events", type=int, default=15_000, help="bulk events in run (a) (batch lane)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes per lane")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--seconds", type=float, default=60, help="run (b) measure, rounded up to whole minutes")
    parser.add_argument("--rate-scale", type=float, default=0.1,
                        help="run (b): Klaviyo's numbers times this, in the sandbox and the fleet alike "
                             "(1 = Klaviyo's own; the default keeps the fleet below its CPU ceiling on 2 cores)")
    parser.add_argument("--timeout", type=float, default=300, help="longest wait for one run (a) load")
    parser.add_argument("--skip", choices=("a", "b"), action="append", default=[], help="skip a run")
    args = parser.parse_args(argv)

    # Ctrl-C and SIGTERM both unwind through the ExitStacks, which stop every process by its pid.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rows: list[Row] = []
    try:
        with ExitStack() as stack:
            redis = PrivateRedis.start()
            stack.callback(redis.stop)
            if "a" not in args.skip:
                console.print("run (a): limits off - starting the sandbox and the workers")
                with fleet(redis, None, args.workers, args.concurrency) as f:
                    rows.append(ceiling(f, SINGLE, args.events, args.timeout))
                    console.print(f"  single: {rows[-1].per_second:,.1f} events/s")
                    rows.append(ceiling(f, BULK, args.bulk_events, args.timeout))
                    console.print(f"  bulk: {rows[-1].per_second:,.1f} events/s")
                flush(redis)  # run (b) starts from an empty broker, ledger and limiter
            if "b" not in args.skip:
                console.print(f"run (b): limits on, scale {args.rate_scale:g} - starting the sandbox and the workers")
                with fleet(redis, args.rate_scale, args.workers, args.concurrency) as f:
                    rows += limited(f, args.rate_scale, args.seconds)
    except KeyboardInterrupt:
        console.print("[red]interrupted: every process stopped")
        return 130
    console.print(table(rows))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    console.print(f"{os.cpu_count()} cores, load average {load} (the machine is shared: CPU-bound rows move with it)")
    console.print(f"command: {' '.join([Path(sys.executable).name, '-m', 'bench.delivery', *sys.argv[1:]])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
