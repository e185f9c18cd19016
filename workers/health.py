"""`bcsync health beat|poller|worker`: one line and exit 0 (healthy) or 1, for container health checks and monitors.

- `beat`: the schedule's last tick (`state.beat`, written by the beat holding the schedule lock about every
  second) is younger than `--max-age` (default `BCSYNC_STALE_AFTER_SECONDS`, the bound of `beat_stale`).
- `poller`: a poller holds the poller lock (renewed while it runs) and its last poll cycle of any resource
  (`state.poller_health`) ended less than `--max-age` ago (default `BCSYNC_STALE_AFTER_SECONDS`; a first load's
  long cycle of one resource can exceed it: raise it for that).
- `worker --lane L`: this host's worker of that lane (Celery node `L@<hostname>`, or `--node`) answers a ping.

Beat and poller checks are fleet-wide: a standby replica (waiting for the lock) is healthy while the active one
works, so a standby is never restarted for being a standby. An unreachable Redis is unhealthy (exit 1).
"""

from __future__ import annotations

import socket
import time
from enum import StrEnum
from typing import Annotated

import typer

from config.lanes import LANES
from config.settings import get_settings
from state.beat import BeatHeartbeat
from state.factory import stores
from state.keys import RedisKeys
from state.poller_health import PollerHealth

HEALTHY, UNHEALTHY = 0, 1


class Process(StrEnum):
    beat = "beat"
    poller = "poller"
    worker = "worker"


def beat_health(max_age: float, now: float) -> tuple[bool, str]:
    settings = get_settings()
    age = BeatHeartbeat(stores().redis, settings.key_prefix).age(now)
    if age is None:
        return False, "beat: UNHEALTHY - no beat has ticked since Redis started (is `bcsync beat` running?)"
    if age > max_age:
        return False, f"beat: UNHEALTHY - last tick {age:.0f} s ago (more than {max_age:.0f} s)"
    return True, f"beat: healthy - last tick {age:.0f} s ago"


def poller_health(max_age: float, now: float) -> tuple[bool, str]:
    settings = get_settings()
    client = stores().redis
    if not client.exists(RedisKeys(settings.key_prefix).poller_lock):
        return False, "poller: UNHEALTHY - no poller holds the poller lock (is `bcsync poller` running?)"
    cycles = PollerHealth(client, settings.key_prefix).all()
    if not cycles:
        return False, "poller: UNHEALTHY - the poller holds its lock but has not finished a poll cycle yet"
    name, last = max(cycles.items(), key=lambda kv: kv[1].at)
    age = max(0.0, now - last.at)
    if age > max_age:
        return False, f"poller: UNHEALTHY - last poll cycle ({name}) ended {age:.0f} s ago (more than {max_age:.0f} s)"
    failing = sorted(n for n, h in cycles.items() if h.error)
    note = f"; read errors: {', '.join(failing)} (bcsync status)" if failing else ""
    return True, f"poller: healthy - last poll cycle ({name}) ended {age:.0f} s ago{note}"


def worker_health(node: str, timeout: float) -> tuple[bool, str]:
    # per command: only the worker check needs the Celery app (and its broker connection)
    from config.celery import app as celery_app  # noqa: PLC0415

    replies = celery_app.control.ping(destination=[node], timeout=timeout) or []
    if any(node in reply for reply in replies):
        return True, f"worker: healthy - {node} answered"
    return False, f"worker: UNHEALTHY - {node} did not answer within {timeout:.0f} s"


def health(
    process: Annotated[Process, typer.Argument(help="beat | poller | worker")],
    max_age: Annotated[float | None, typer.Option(
        help="beat/poller: seconds since the last tick or cycle (default BCSYNC_STALE_AFTER_SECONDS)")] = None,
    lane: Annotated[str | None, typer.Option(help="worker: the lane of this host's worker")] = None,
    node: Annotated[str | None, typer.Option(help="worker: the Celery node name (default LANE@hostname)")] = None,
    timeout: Annotated[float, typer.Option(help="worker: seconds to wait for the ping")] = 5.0,
) -> None:
    """Exit 0 when the process is healthy, 1 when not (one line says why): for health checks."""
    bound = max_age if max_age is not None else get_settings().stale_after_seconds
    if process is Process.worker:
        if node is None and lane not in LANES:
            raise typer.BadParameter(f"give --lane ({', '.join(LANES)}) or --node", param_hint="--lane")
        ok, line = worker_health(node or f"{lane}@{socket.gethostname()}", timeout)
    elif process is Process.beat:
        ok, line = beat_health(bound, time.time())
    else:
        ok, line = poller_health(bound, time.time())
    typer.echo(line, err=not ok)
    raise typer.Exit(HEALTHY if ok else UNHEALTHY)
