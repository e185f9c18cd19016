"""The watchdog: what stopped moving is reported, never left to be found by a customer.

Run from every worker's drainer thread; one worker at a time does the checks (a Redis gate). Each problem is
an exception in the register, with its owner (config/mapping.py `[owners]`):
- beat silent for longer than ``stale_after_seconds`` (`beat_stale`): nothing sends stock or the hourly batch;
- a buffer holding work for longer than that (`buffer_stale`): the stock figures past their debounce, the
  order bulk buffer, the catalog outbox, a claim nobody finished;
- dead letters near their expiry (`dead_letter_expiring`, via the dead-letter sweep).
"""

from __future__ import annotations

import logging
import time

from state.beat import BeatHeartbeat
from state.buffers import buffer_ages
from state.claims import RECLAIM_AFTER
from state.factory import Stores

log = logging.getLogger(__name__)

WATCH_EVERY_SECONDS = 30.0
# the backfill buffer is flushed by its own run (`bcsync backfill orders`), not by the fleet; held stock figures
# wait for their scan's rows, which a long first load legitimately takes long to store: their bound is the
# scan's (`bcsync.stock.expire_scans`, a stock_incomplete exception), not a flush's
UNWATCHED_BUFFERS = frozenset({"order_backfill", "stock_held"})


def watch_if_due(st: Stores, now: float | None = None, every: float = WATCH_EVERY_SECONDS) -> list[str]:
    """Run the checks if no worker ran them in the last `every` seconds; returns the problems raised."""
    if not st.redis.set(st.keys.watchdog_gate, "1", nx=True, px=max(1, int(every * 1000))):
        return []
    return watch(st, now)


def watch(st: Stores, now: float | None = None) -> list[str]:
    now = now or time.time()
    limit = st.settings.stale_after_seconds
    raised: list[str] = []
    tick = BeatHeartbeat(st.redis, st.settings.key_prefix).last_tick()
    if tick is not None and now - tick > limit:
        st.exceptions.record("beat_stale", "beat", f"beat has not ticked for {now - tick:.0f} s: stock figures "
                             "and the hourly profile batch are not sent; check that `bcsync beat` runs",
                             severity="critical", details={"last_tick": tick})
        raised.append("beat")
    allowed = {
        "stock_pending": limit + st.mapping.stock.debounce_seconds,
        "open_claims": limit + 2 * RECLAIM_AFTER,
    }
    for name, age in buffer_ages(st, now).items():
        if name in UNWATCHED_BUFFERS or age.oldest_age_seconds is None:
            continue
        if age.oldest_age_seconds > allowed.get(name, limit):
            st.exceptions.record("buffer_stale", name, f"{name} has held work for {age.oldest_age_seconds:.0f} s "
                                 f"({age.items} item(s)): its flush is not running", severity="critical",
                                 details={"items": age.items, "oldest_age_seconds": age.oldest_age_seconds})
            raised.append(name)
    st.dead_letters.sweep_if_due()
    if raised:
        log.error("watchdog: stale %s", ", ".join(raised))
    return raised
