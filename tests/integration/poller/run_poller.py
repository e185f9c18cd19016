"""A real poller process for the kill / takeover tests: `python -m tests.integration.poller.run_poller REDIS BC TTL`."""

from __future__ import annotations

import logging
import sys

from tests.support.poller import make_poller


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    redis_url, bc_url, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3])
    poller = make_poller(redis_url, bc_url, lock_ttl=ttl)
    poller.install_signal_handlers()
    poller.run_forever()
    logging.getLogger("bcsync.poller").info("stopped cleanly")


if __name__ == "__main__":
    main()
