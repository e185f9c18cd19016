"""A Klaviyo outage with an order re-synced during it, at full length (issue 10): attempts per event, the most
envelopes seen carrying one operation key, seconds from the outage's end to the last delivery, dead letters.

The scenario of tests/integration/orders/test_outage.py (real default and batch workers at concurrency 2, both
sandboxes, a private Redis; the order amended, partly shipped and amended again during the outage, two change
messages delivered twice; every envelope sampled every 0.2 s), with the production backoff by default (base
2 s, ceiling 600 s, `max_attempts` 8) so the growing backoff meets a real minute of 503s.

    .venv/bin/python -m bench.outage --seconds 60
    .venv/bin/python -m bench.outage --seconds 20 --without registry   # what the test catches without it
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from config.settings import Settings
from sandbox.klaviyo.config import KlaviyoSandboxConfig
from sandbox.redis_server import PrivateRedis
from tests.integration.orders.conftest import MAPPING, running_fleet
from tests.integration.orders.test_outage import FLEET_LANES, run_outage

DEFAULTS = Settings.model_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the outage")
    parser.add_argument("--backoff-base", type=float, default=DEFAULTS["backoff_base_seconds"].default,
                        help="BCSYNC_BACKOFF_BASE_SECONDS (the test uses 3 x the outage)")
    parser.add_argument("--backoff-max", type=float, default=DEFAULTS["backoff_max_seconds"].default,
                        help="BCSYNC_BACKOFF_MAX_SECONDS")
    parser.add_argument("--without", action="append", choices=("registry", "probe"), default=[],
                        help="run the workers without this safeguard (tests/support/without_safeguards.py)")
    parser.add_argument("--patience", type=float, default=120.0, help="seconds to wait for delivery after the end")
    args = parser.parse_args()

    env = {"BCSYNC_BACKOFF_BASE_SECONDS": f"{args.backoff_base:g}",
           "BCSYNC_BACKOFF_MAX_SECONDS": f"{args.backoff_max:g}"}
    include: tuple[str, ...] = ()
    if args.without:
        env["TEST_WITHOUT_SAFEGUARDS"] = ",".join(args.without)
        include = ("tests.support.without_safeguards",)
    redis_server = PrivateRedis.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bcsync-outage-") as folder:
            record = Path(folder) / "klaviyo-requests.jsonl"
            config = KlaviyoSandboxConfig(rate_limits_enabled=False, record_path=record)
            with running_fleet(redis_server, Path(folder), MAPPING, config, lanes=FLEET_LANES, include=include,
                               **env) as fleet:
                report = run_outage(fleet, args.seconds, record, patience=args.patience)
                max_attempts = fleet.settings.max_attempts
    finally:
        redis_server.stop()
    print(f"backoff base {args.backoff_base:g} s, ceiling {args.backoff_max:g} s, max_attempts {max_attempts}; "
          f"workers: {', '.join(f'{lane} x{n}' for lane, n in FLEET_LANES.items())}"
          + (f"; WITHOUT {', '.join(args.without)}" if args.without else ""))
    for line in report.lines():
        print(line)
    for violation in report.watch.violations[:5]:
        print(f"  {violation}")


if __name__ == "__main__":
    main()
