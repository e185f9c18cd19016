"""Tasks that fail on purpose until a test lifts the cause, for the no-loss tests. A real worker runs them
(`WorkerProcess(include=("tests.support.fault_tasks",))`) under the fleet's own task base class.

Each counts its runs in Redis under `<prefix>:test:<token>:runs` and, once `<prefix>:test:<token>:lifted` is set,
succeeds and appends its token to `<prefix>:test:done`.
"""

from __future__ import annotations

import os
import signal
import time

import redis
from celery.exceptions import SoftTimeLimitExceeded

from config.celery import app
from state.factory import stores


def _run(token: str) -> tuple[redis.Redis, str, bool]:
    client, prefix = stores().redis, stores().settings.key_prefix
    client.incr(f"{prefix}:test:{token}:runs")
    return client, prefix, bool(client.get(f"{prefix}:test:{token}:lifted"))


@app.task(name="bcsync.test.fails_until_lifted")
def fails_until_lifted(token: str) -> None:
    client, prefix, lifted = _run(token)
    if not lifted:
        raise KeyError(f"a bug no rule names ({token})")
    client.rpush(f"{prefix}:test:done", token)


@app.task(name="bcsync.test.hangs_until_lifted")
def hangs_until_lifted(token: str) -> None:
    client, prefix, lifted = _run(token)
    if not lifted:
        try:
            time.sleep(120)  # far past the hard time limit
        except SoftTimeLimitExceeded:
            time.sleep(120)  # stuck where the soft limit cannot reach (a C call): only the hard limit ends it
    client.rpush(f"{prefix}:test:done", token)


@app.task(name="bcsync.test.kills_its_worker_until_lifted")
def kills_its_worker_until_lifted(token: str) -> None:
    client, prefix, lifted = _run(token)
    if not lifted:
        time.sleep(0.5)  # the pool has recorded which process runs the job (killed sooner, it may not know)
        os.kill(os.getpid(), signal.SIGKILL)  # a segfault, the OOM killer: the process just goes
    client.rpush(f"{prefix}:test:done", token)
