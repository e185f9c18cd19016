"""Recovery after a fast-lane worker is SIGKILLed with consent changes in flight: seconds from the kill until
a second fast worker has delivered them again, with the production timings by default (visibility timeout
20 s, redelivery check 5 s, heartbeat 2 s: the bound is 25 s).

Setup: a private Redis, the Klaviyo sandbox holding its answers to subscription jobs back, one fast worker
(concurrency 2) taking a subscribe and an unsubscribe, a second fast worker idle; then the first worker's whole
process group is SIGKILLed (the scenario of tests/integration/delivery/test_worker_recovery.py).

    .venv/bin/python -m bench.recovery --runs 3
"""

from __future__ import annotations

import argparse
import statistics

from sandbox.klaviyo.app import create_app
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.redis_server import PrivateRedis
from sandbox.server import ServerThread
from tests.integration.delivery.test_fleet_delivery import Fleet
from tests.integration.delivery.test_worker_recovery import Timing, kill_and_recover


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--visibility", type=int, default=20, help="BCSYNC_VISIBILITY_TIMEOUT_SECONDS")
    parser.add_argument("--check", type=int, default=5, help="BCSYNC_REDELIVERY_CHECK_SECONDS")
    parser.add_argument("--heartbeat", type=float, default=2.0, help="BCSYNC_UNACKED_HEARTBEAT_SECONDS")
    args = parser.parse_args()
    timing = Timing(args.visibility, args.check, args.heartbeat)

    redis_server = PrivateRedis.start()
    times: list[float] = []
    try:
        for _ in range(args.runs):
            server = ServerThread(create_app(KlaviyoSandboxConfig(rate_limits_enabled=False))).start()
            fleet = Fleet(redis_server.url, server, **timing.env())
            try:
                times.append(kill_and_recover(fleet, timing))
            finally:
                fleet.stop()
                server.stop()
    finally:
        redis_server.stop()
    print(f"| visibility + check (s) | heartbeat (s) | runs | recovery min / median / max (s) |\n"
          f"|---|---|---|---|\n"
          f"| {timing.visibility} + {timing.check} = {timing.bound} | {timing.heartbeat:g} | {len(times)} | "
          f"{min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f} |")


if __name__ == "__main__":
    main()
