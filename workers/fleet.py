"""`bcsync run`: the whole fleet on one machine as supervised child processes.

Children: one worker per lane, beat, the poller (when installed), Flower, the operations console (`bcsync
console`) and the Prometheus endpoint (`bcsync metrics`). A child that dies is restarted
with a growing delay; SIGTERM/SIGINT stops every child by its pid (SIGTERM first, SIGKILL after a grace
period) so nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

GRACE_SECONDS = 15.0


def bcsync_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "workers.entry", *args]


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    log_path: str | None = None

    def start(self) -> None:
        out = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=out or None, stderr=subprocess.STDOUT if out else None,
            start_new_session=True,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Supervisor:
    children: list[Child]
    stopping: bool = False
    on_tick: Callable[[Supervisor], None] | None = None
    tick_seconds: float = 1.0
    _stopped_at: float | None = field(default=None, init=False)

    def start(self) -> None:
        for child in self.children:
            child.start()

    def _handle(self, *_: object) -> None:
        self.stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        self.start()
        try:
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    if not child.alive and child.process is not None:
                        if child.next_start == 0.0:
                            delay = min(30.0, 2.0 ** min(child.restarts, 5))
                            child.next_start = now + delay
                            print(f"[fleet] {child.name} exited ({child.process.returncode}); restart in "
                                  f"{delay:.0f}s", flush=True)
                        elif now >= child.next_start:
                            child.restarts += 1
                            child.next_start = 0.0
                            child.start()
                if self.on_tick:
                    self.on_tick(self)
                time.sleep(self.tick_seconds)
        finally:
            self.stop()

    def stop(self) -> None:
        for child in self.children:
            if child.alive and child.process is not None:
                os.killpg(child.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()


def fleet_children(env: dict[str, str] | None = None, with_poller: bool = True,
                   with_flower: bool = True, log_dir: str | None = None, with_metrics: bool = True,
                   with_console: bool = True) -> list[Child]:
    def log(name: str) -> str | None:
        return os.path.join(log_dir, f"{name}.log") if log_dir else None

    children = [
        Child(f"worker-{lane}", bcsync_argv("worker", "--lane", lane), env, log_path=log(f"worker-{lane}"))
        for lane in ("fast", "default", "batch")
    ]
    children.append(Child("beat", bcsync_argv("beat"), env, log_path=log("beat")))
    if with_poller:
        children.append(Child("poller", bcsync_argv("poller"), env, log_path=log("poller")))
    if with_flower:
        children.append(Child("flower", bcsync_argv("flower"), env, log_path=log("flower")))
    if with_console:
        children.append(Child("console", bcsync_argv("console"), env, log_path=log("console")))
    if with_metrics:
        children.append(Child("metrics", bcsync_argv("metrics"), env, log_path=log("metrics")))
    return children
