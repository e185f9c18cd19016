"""The official SDK in a plain loop and the fleet, side by side in one run on the same machine (issue 18).

    .venv/bin/python -m bench.compare                                   # 1,000 single, 20,000 bulk events
    .venv/bin/python -m bench.compare --single 300 --bulk 5000          # a quick run
    .venv/bin/python -m bench.compare --write docs/performance.md       # the block between its markers

For each Klaviyo - the Klaviyo sandbox at Klaviyo's real numbers (`--rate-scale 1`), and a null Klaviyo
(bench/null_klaviyo.py: 202 at once to every POST, nothing checked, nothing stored) - and each endpoint family
(single events: `POST /api/events`; bulk events: `POST /api/event-bulk-create-jobs`, 1,000 a request):

- the SDK loop: `klaviyo_api.KlaviyoAPI` (PyPI `klaviyo-api`, the sandbox/dev extra) called in a plain loop
  from this process, sleeping Retry-After on a 429 and sending again;
- the fleet: real `bcsync worker` processes (the default lane for single events, the batch lane for bulk, 2
  pool processes each) on a private redis-server, the events published as producers publish them; for single
  events against the null Klaviyo also with Celery task events off (BCSYNC_TASK_EVENTS=false).

Printed per row: events per minute (from the first publish to the last request Klaviyo answered), the share of
the family's ceiling (Klaviyo's steady requests per minute x events per request), the ratio to the SDK loop's
events per minute, CPU ms per event of the workers (with their pool processes) and of redis-server - less what
the idle fleet spends in as long (its drainer, heartbeats, Celery's own loop: watched for `IDLE_SECONDS` first,
once every pool process has started and built its clients) - and of the producer (this process: publishing for
the fleet, everything for the SDK loop), Redis commands per event
(`INFO commandstats` calls over the run, less what the idle fleet issues in as long - heartbeats, sweeps - and
counting the commands a script runs), for single events also the commands clients sent (MONITOR over 100 more
events, a script's own commands left out: an upper bound of round trips, since a pipeline's commands count one
by one), Redis round trips per event (`INFO stats` total_reads_processed over the run: each request redis-server
read off a client's socket - a command, a pipeline, a MULTI block - from every process, producer included, less
the idle fleet's) and Klaviyo's 429s.

`--write FILE` replaces the block between `<!-- bench.compare -->` markers (appended if absent). Every
process started here is stopped by its pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import redis as redis_lib
from klaviyo_api import KlaviyoAPI  # the sandbox/dev extra (the official SDK): this bench's baseline

ROOT = Path(__file__).resolve().parents[1]

from bench.budget import Publisher, cpu_seconds, events, running  # noqa: E402
from bench.delivery import KlaviyoSandboxProcess  # noqa: E402
from bench.doc_blocks import write_block  # noqa: E402
from bench.yardstick import describe, yardstick_ms  # noqa: E402
from config.mapping import Mapping  # noqa: E402
from config.redis import redis_client  # noqa: E402
from config.settings import Settings  # noqa: E402
from connectors.klaviyo import builders  # noqa: E402
from connectors.klaviyo.endpoints import endpoint  # noqa: E402
from delivery.engine import forget_prefetched, process_envelope, queue_held_reads  # noqa: E402
from delivery.packing import group_for_delivery  # noqa: E402
from delivery.runtime import build_runtime  # noqa: E402
from sandbox.redis_server import PrivateRedis  # noqa: E402
from sandbox.server import free_port  # noqa: E402
from state.factory import Stores  # noqa: E402
from state.task_runs import current_run  # noqa: E402
from sync.operations import Operation  # noqa: E402
from tests.support.fleet import wait_for, wait_idle  # noqa: E402

MARK = "bench.compare"
BULK_ROWS = 1000


@dataclass(frozen=True)
class FamilySpec:
    name: str
    key: str  # the endpoint registry's key (its tier gives the ceiling)
    path: str
    lane: str
    rows: int  # events per request

    @property
    def stat(self) -> str:
        return f"POST {self.path}"

    @property
    def ceiling(self) -> int:
        """Events per minute at Klaviyo's steady limit."""
        return endpoint(self.key).tier.steady * self.rows


SINGLE = FamilySpec("single events", "events", "/api/events", "default", 1)
BULK = FamilySpec("bulk events", "event-bulk-create-jobs", "/api/event-bulk-create-jobs", "batch", BULK_ROWS)


# --- the two Klaviyos ---------------------------------------------------------------------------------


@dataclass
class NullKlaviyoProcess:
    """bench/null_klaviyo.py on a free port, stopped by its pid (the sandbox's interface, as far as used here)."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> NullKlaviyoProcess:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.null_klaviyo", "--port", str(self.port)],
                                        cwd=ROOT, start_new_session=True)
        wait_for(self._ready, 30, 0.1, "the null Klaviyo to answer")
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/_stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def answered(self, family: FamilySpec) -> tuple[int, int]:
        """(requests answered 2xx, 429s)."""
        return int(httpx.get(f"{self.url}/_stats", timeout=10).json().get(family.stat, 0)), 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def sandbox_answered(sandbox: KlaviyoSandboxProcess, family: FamilySpec) -> tuple[int, int]:
    stats = sandbox.stats()["endpoints"].get(family.stat, {})
    ok = sum(int(n) for code, n in stats.get("statuses", {}).items() if code.startswith("2"))
    return ok, int(stats.get("throttled", 0))


class Target:
    """One Klaviyo: its name, its process and how to read what it answered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.null = name == "null"
        self.process: Any = NullKlaviyoProcess().start() if self.null else KlaviyoSandboxProcess(1.0).start()

    @property
    def url(self) -> str:
        return str(self.process.url)

    def answered(self, family: FamilySpec) -> tuple[int, int]:
        return self.process.answered(family) if self.null else sandbox_answered(self.process, family)

    def stop(self) -> None:
        self.process.stop()


# --- measuring ----------------------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    family: FamilySpec
    runner: str
    events: int
    seconds: float
    worker_cpu: float = 0.0  # seconds
    redis_cpu: float = 0.0
    producer_cpu: float = 0.0
    redis_commands: float | None = None
    client_commands: float | None = None  # sent by clients (MONITOR), a script's own commands not counted
    redis_reads: float | None = None  # requests Redis read off its clients' sockets: round trips, whole fleet
    throttled: int = 0

    @property
    def per_minute(self) -> float:
        return 60 * self.events / self.seconds if self.seconds else 0.0

    def ms(self, seconds: float) -> float:
        return 1000 * seconds / self.events


def own_cpu() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def sdk_loop(target: Target, family: FamilySpec, count: int) -> Row:
    """The official SDK, one call after the other, a 429 waited out (Retry-After) and sent again."""
    sdk = KlaviyoAPI("pk_test_0123456789abcdef", test_host=target.url, max_retries=0)
    run = uuid.uuid4().hex[:6]
    payloads = [op.payload for op in events(0, count, family.lane, f"sdk-{run}")]
    if family.rows == 1:
        bodies = [builders.event_body(p).body for p in payloads]
        call: Callable[[dict[str, Any]], Any] = sdk.Events.create_event
    else:
        bodies = [builders.bulk_events_body(payloads[i:i + family.rows]).body
                  for i in range(0, count, family.rows)]
        call = sdk.Events.bulk_create_events
    throttled = 0
    cpu, start = own_cpu(), time.time()
    for body in bodies:
        while True:
            try:
                call(body)
                break
            except Exception as exc:  # noqa: BLE001  the SDK's ApiException: a 429 waits, anything else stops
                if getattr(exc, "status", None) != 429:
                    raise
                throttled += 1
                headers = getattr(exc, "headers", None) or {}
                time.sleep(float(headers.get("Retry-After") or 1))
    return Row(target.name, family, "SDK loop", count, time.time() - start, producer_cpu=own_cpu() - cpu,
               throttled=throttled)


def command_calls(client: Any) -> dict[str, int]:
    return {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in client.info("commandstats").items()}


def socket_reads(client: Any) -> int:
    """Read events redis-server has processed on client sockets (`INFO stats`): one per request a client sent,
    a pipeline or a MULTI block being one - the round trips of every process, counted where they arrive."""
    return int(client.info("stats")["total_reads_processed"])


def commands(client: Any) -> int:
    return sum(command_calls(client).values())


def client_commands(url: str, target: Target, family: FamilySpec, publish: Publisher, count: int) -> float:
    """Commands clients sent per event, from MONITOR (a script's own commands show as `lua` there and are left
    out; the commands of a pipeline still count one by one): `count` more events, less what the idle fleet
    sent in as long."""
    seen: list[tuple[float, str, str]] = []
    stop = threading.Event()

    def watch() -> None:
        client = redis_lib.Redis.from_url(url)
        with client.monitor() as monitor:
            while not stop.is_set():
                command = monitor.next_command()
                seen.append((time.time(), str(command.get("client_type")), str(command.get("command"))))
        client.close()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    time.sleep(1)
    idle_from = time.time()
    time.sleep(3)
    start = time.time()
    answered = target.answered(family)[0]
    publish(*[[op] for op in events(0, count, family.lane, f"monitor-{uuid.uuid4().hex[:6]}")])
    wait_for(lambda: target.answered(family)[0] - answered >= count, 600, 0.2, "the monitored events")
    end = time.time()
    stop.set()
    redis_lib.Redis.from_url(url).ping()  # one more command so the watcher wakes up and sees the stop
    watcher.join(timeout=10)

    def sent(since: float, until: float) -> list[str]:
        return [cmd.split(" ", 1)[0].strip('"').lower() for at, kind, cmd in seen
                if since <= at < until and kind != "lua"]

    idle_rate = len(sent(idle_from, start)) / (start - idle_from)
    during = sent(start, end)
    names: dict[str, int] = {}
    for name in during:
        names[name] = names.get(name, 0) + 1
    print(f"  commands clients sent per {family.name[:-1]} (MONITOR): " + ", ".join(
        f"{name} {n / count:.2f}" for name, n in sorted(names.items(), key=lambda kv: -kv[1])[:16]), flush=True)
    return max(0.0, len(during) - idle_rate * (end - start)) / count


@dataclass
class TaskTrips:
    total: float  # round trips per event
    where: dict[str, float]  # per caller
    client_ms: float  # the delivery task's own CPU per event, in one process (no Celery, no kombu)
    redis_ms: float  # redis-server's CPU per event meanwhile


TIMED_EVENTS = 2000  # the delivery task's path timed in one process


def task_round_trips(target: Target, count: int = 50, timed: int = TIMED_EVENTS) -> TaskTrips:
    """Round trips to Redis of the delivery task per single event - its start record, which carries the
    engine's first reads (`tasks.base.FleetTask`, `delivery.engine.queue_held_reads`), and its body
    (`delivery.engine.process_envelope`) - counted in this process as writes to a Redis socket (a pipeline is
    one) against `target`, with where each was made. Celery's and kombu's own (take, record, ack, publish, task
    events) are not in it. Then `timed` more events for the CPU of that path in this one process and of
    redis-server: a figure the other processes' contention for the 2 cores blurs less than the fleet's."""
    redis = PrivateRedis.start()
    try:
        client = redis_client(redis.url)  # as the fleet's stores make theirs
        settings = Settings(redis_url=redis.url, key_prefix="rt", klaviyo_base_url=target.url,
                            klaviyo_api_key="pk_test_0123456789abcdef",
                            rate_limit_scale=1000.0 if target.null else 1.0)
        rt = build_runtime(Stores(settings, Mapping(), client))  # as a worker builds it
        messages = [orjson.loads(orjson.dumps(e)) for e in
                    group_for_delivery(events(0, count + 1 + timed, "default", f"rt-{uuid.uuid4().hex[:6]}"))]
        later = [messages.pop() for _ in range(timed)]
        def run(message: dict[str, Any]) -> None:  # as the delivery task runs it (tasks/delivery.py)
            message_id = uuid.uuid4().hex
            token = current_run.set(message_id)
            try:
                _, keep, reads = rt.stores.task_runs.started_reading(
                    message_id, "bcsync.deliver.event", "default", lambda pipe: queue_held_reads(rt, message, pipe))
                if keep is not None:
                    keep(reads)
                process_envelope(message, rt)
            finally:
                current_run.reset(token)
                forget_prefetched()

        run(messages.pop())  # connections and scripts ready
        where: dict[str, float] = {}
        original = redis_lib.connection.Connection.send_packed_command

        def counting(self: Any, command: Any, check_health: bool = True) -> None:
            frames = [f for f in traceback.extract_stack()[:-1]
                      if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename]
            caller = f"{Path(frames[-1].filename).relative_to(ROOT)}:{frames[-1].name}" if frames else "?"
            where[caller] = where.get(caller, 0) + 1
            original(self, command, check_health)

        redis_lib.connection.Connection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            for message in messages:
                run(message)
        finally:
            redis_lib.connection.Connection.send_packed_command = original  # type: ignore[method-assign]
        per_event = {caller: n / count for caller, n in where.items()}
        server = psutil.Process(redis.process.pid)
        redis_before, cpu = sum(server.cpu_times()[:2]), time.process_time()
        for message in later:
            run(message)
        client_ms = 1000 * (time.process_time() - cpu) / timed
        redis_ms = 1000 * (sum(server.cpu_times()[:2]) - redis_before) / timed
        return TaskTrips(sum(per_event.values()), per_event, client_ms, redis_ms)
    finally:
        redis.stop()


# the SDK loop's CPU per event against the null Klaviyo on the machine of the 2026-12-06 block (git history of
# docs/performance.md), where issue 18's targets in ms were measured against: what carries them to another machine
REFERENCE_SDK_MS = {"single events": 0.322, "bulk events": 0.173}

IDLE_SECONDS = 5.0  # how long the idle fleet is watched before the events: its commands and CPU a second


def fleet_run(target: Target, family: FamilySpec, count: int, task_events: bool, monitored: int = 100) -> Row:
    redis = PrivateRedis.start()
    try:
        env = {"BCSYNC_TASK_EVENTS": "true" if task_events else "false"}
        if target.null:  # no limit binds: what is measured is the fleet's own cost
            env["BCSYNC_RATE_LIMIT_SCALE"] = "1000"
        with running(redis, target.process, {family.lane: 2}, **env) as fleet:
            client = redis_lib.Redis.from_url(redis.url)
            wait_idle(client, fleet.env["BCSYNC_KEY_PREFIX"])
            pids = [w.process.pid for w in fleet.workers if w.process is not None]
            idle_start, idle_commands, idle_reads = time.time(), commands(client), socket_reads(client)
            idle_workers, idle_redis = cpu_seconds(pids), cpu_seconds([redis.process.pid])
            time.sleep(IDLE_SECONDS)
            idle_seconds = time.time() - idle_start
            idle_rate = (commands(client) - idle_commands) / idle_seconds
            idle_read_rate = (socket_reads(client) - idle_reads) / idle_seconds
            # what the idle fleet spends a second (its drainer, heartbeats, Celery's own loop): not an event's cost
            idle_worker_rate = (cpu_seconds(pids) - idle_workers) / idle_seconds
            idle_redis_rate = (cpu_seconds([redis.process.pid]) - idle_redis) / idle_seconds
            answered_before, throttled_before = target.answered(family)
            publish = Publisher(fleet)
            ops = events(0, count, family.lane, f"fleet-{uuid.uuid4().hex[:6]}")
            groups: list[list[Operation]] = [ops] if family.rows > 1 else [[op] for op in ops]
            workers_before, redis_before = cpu_seconds(pids), cpu_seconds([redis.process.pid])
            calls_before = command_calls(client)
            commands_before = sum(calls_before.values())
            reads_before = socket_reads(client)
            cpu, start = own_cpu(), time.time()
            publish(*groups)
            producer = own_cpu() - cpu
            requests = -(-count // family.rows)
            wait_for(lambda: target.answered(family)[0] - answered_before >= requests, 3600, 0.2,
                     f"{count} {family.name} answered")
            seconds = time.time() - start
            calls = command_calls(client)
            reads = socket_reads(client) - reads_before - idle_read_rate * seconds
            used = sum(calls.values()) - commands_before - idle_rate * seconds
            per_event = sorted(((n - calls_before.get(name, 0)) / count, name) for name, n in calls.items())[::-1]
            print(f"  Redis commands per {family.name[:-1]}: " + ", ".join(
                f"{name} {n:.2f}" for n, name in per_event[:14] if n >= 0.01), flush=True)
            row = Row(target.name, family, "fleet" if task_events else "fleet, task events off", count, seconds,
                      worker_cpu=max(0.0, cpu_seconds(pids) - workers_before - idle_worker_rate * seconds),
                      redis_cpu=max(0.0, cpu_seconds([redis.process.pid]) - redis_before - idle_redis_rate * seconds),
                      producer_cpu=producer,
                      redis_commands=max(0.0, used) / count,
                      redis_reads=max(0.0, reads) / count,
                      throttled=target.answered(family)[1] - throttled_before)
            if family.rows == 1:  # after the CPU was measured: MONITOR costs Redis CPU of its own
                row.client_commands = client_commands(redis.url, target, family, publish, monitored)
            return row
    finally:
        redis.stop()


# --- output -------------------------------------------------------------------------------------------


def markdown(rows: list[Row], args: argparse.Namespace, trips: dict[str, TaskTrips],
             yardstick: float) -> str:
    command = f"python -m bench.compare --single {args.single} --bulk {args.bulk}"
    lines = [
        f"`{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores shared, load "
        f"average {os.getloadavg()[0]:.1f} at the end; {describe(yardstick)}, before the runs)",
        "",
        "| Klaviyo | family | runner | events | events/min | share of ceiling | x SDK loop | worker ms/event "
        "| Redis ms/event | worker+Redis ms/event | worker+Redis CPU / SDK loop CPU | producer ms/event "
        "| Redis commands/event | client commands/event | Redis round trips/event | 429s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sdk = {(r.target, r.family.name): r for r in rows if r.runner == "SDK loop"}
    for r in rows:
        base = sdk.get((r.target, r.family.name))
        ratio = f"{r.per_minute / base.per_minute:.2f}" if base else "-"
        fleet = r.runner != "SDK loop"
        # the SDK loop's CPU is all in its process (the producer column): a yardstick of the same machine
        relative = (f"{(r.worker_cpu + r.redis_cpu) / base.producer_cpu:.2f}"
                    if fleet and base and base.producer_cpu > 0 else "-")
        lines.append(
            f"| {'null' if r.target == 'null' else 'sandbox, real limits'} | {r.family.name} | {r.runner} "
            f"| {r.events:,} | {r.per_minute:,.0f} | {100 * r.per_minute / r.family.ceiling:.1f}% | {ratio} "
            f"| {r.ms(r.worker_cpu):.3f} | {r.ms(r.redis_cpu):.3f} | "
            f"{r.ms(r.worker_cpu + r.redis_cpu):.3f} | {relative} | {r.ms(r.producer_cpu):.3f} | "
            f"{f'{r.redis_commands:.1f}' if fleet and r.redis_commands is not None else '-'} | "
            f"{f'{r.client_commands:.1f}' if r.client_commands is not None else '-'} | "
            f"{f'{r.redis_reads:.1f}' if fleet and r.redis_reads is not None else '-'} | {r.throttled} |")
    lines += ["", "Ceilings: single events 3,500 requests/min (XL), bulk events 150 requests/min (M) x 1,000 events. "
              "The SDK loop's CPU is all in its one process (producer column). Worker and Redis CPU: less what "
              f"the idle fleet spent a second, watched for {IDLE_SECONDS:g} s before the events. "
              "Client commands: what the fleet's "
              "processes sent over 100 more single events (MONITOR; a script's own commands left out, a "
              "pipeline's commands one by one, MULTI and EXEC included), after the CPU runs. "
              "Redis round trips: the requests redis-server read off every client's socket (`INFO stats` "
              "total_reads_processed: a pipeline, a MULTI block or a script is one; the producer's publishing "
              "and every worker process counted alike), less the idle fleet's in as long. "
              "Issue 18's targets against the null Klaviyo: bulk <= 0.08 and single <= 2.0 worker+Redis "
              "ms/event (task events on), <= 7 Redis round trips per single event. They were set on machines "
              f"where the SDK loop took {REFERENCE_SDK_MS['single events']} ms of CPU per single event and "
              f"{REFERENCE_SDK_MS['bulk events']} per bulk event (this bench on 2026-12-06); on another machine "
              "the CPU / SDK loop CPU column carries them over: single <= "
              f"{2.0 / REFERENCE_SDK_MS['single events']:.1f}x, bulk <= {0.08 / REFERENCE_SDK_MS['bulk events']:.2f}x."]
    for name, trip in trips.items():
        lines += ["", f"Redis round trips of the delivery task per single event ({name} Klaviyo, counted as socket "
                  f"writes in its start record and `process_envelope`, 50 events): **{trip.total:.2f}** - " + ", ".join(
                      f"`{caller}` {n:.2f}" for caller, n in sorted(trip.where.items(), key=lambda kv: -kv[1]))
                  + f". The same path run in one process (no Celery, no kombu, {TIMED_EVENTS:,} events): "
                  f"{trip.client_ms:.3f} ms of its CPU and {trip.redis_ms:.3f} ms of Redis's per event."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--single", type=int, default=1000, help="single events per run")
    parser.add_argument("--bulk", type=int, default=20_000, help="bulk events per run (1,000 a request)")
    parser.add_argument("--targets", default="null,sandbox", help="which Klaviyos, in order: null,sandbox")
    parser.add_argument("--write", type=Path, help="put the block into this doc (between its markers)")
    args = parser.parse_args(argv)
    # Ctrl-C and SIGTERM both unwind through the finally blocks, which stop every process by its pid
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rows: list[Row] = []
    trips: dict[str, TaskTrips] = {}
    yardstick = yardstick_ms()
    print(describe(yardstick), flush=True)
    for name in args.targets.split(","):
        target = Target(name)
        try:
            if args.single > 0:
                trips[name] = task_round_trips(target)
            for family, count in ((SINGLE, args.single), (BULK, args.bulk)):
                if count <= 0:
                    continue
                rows.append(sdk_loop(target, family, count))
                print(f"{name} {family.name}: SDK loop {rows[-1].per_minute:,.0f}/min", flush=True)
                rows.append(fleet_run(target, family, count, task_events=True))
                print(f"{name} {family.name}: fleet {rows[-1].per_minute:,.0f}/min", flush=True)
                if target.null and family is SINGLE:
                    rows.append(fleet_run(target, family, count, task_events=False))
                    print(f"{name} {family.name}: fleet, events off {rows[-1].per_minute:,.0f}/min", flush=True)
        finally:
            target.stop()
    block = markdown(rows, args, trips, yardstick)
    print(block)
    if args.write:
        write_block(args.write, MARK, block)
        print(f"wrote the {MARK} block into {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
