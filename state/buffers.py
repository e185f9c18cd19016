"""The fleet's Redis buffers as operators see them, and the reclaim of claims whose process died.

Buffers hold work until a flush publishes it: the order bulk buffers (lists), the debounced stock figures
and the catalog outbox (hashes); and the stock figures held until every row of their SKU that a scan delivers
is stored (`state/stock_scans.py`: released by the scan, not by a flush). A flush moves what it publishes
into a claim (`state/claims.py`) until the broker has it. `buffer_ages` gives each buffer's item count and the
age of its oldest item, for `bcsync status` and a watchdog; `reclaim_stale_claims` is what a periodic thread
calls so that claims of a dead process go back even when no flush runs.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import redis

from state.claims import ClaimStore
from state.factory import Stores
from state.keys import RedisKeys
from state.stock import StockState
from state.stock_scans import StockScans

BUFFERS = ("order_bulk", "order_backfill", "stock_pending", "stock_held", "catalog_outbox", "open_claims")
# An order bulk buffer is one list per operation kind, so that each flushes whole jobs of its own endpoint (1,000
# events, not 1,000 items of which some are profile upserts): events in the buffer's own key, the ERP aggregates'
# profile upserts in `<buffer>:profile_upsert`. Any other kind shares the events' list (none is buffered today).
BULK_KINDS = ("event", "profile_upsert")


def kind_buffer(buffer: str, kind: str) -> str:
    """The list of an order bulk buffer (`buffer`, a full key) that holds operations of `kind`."""
    return f"{buffer}:{kind}" if kind in BULK_KINDS and kind != "event" else buffer


def kind_buffers(buffer: str) -> dict[str, str]:
    """Every list of an order bulk buffer: kind -> key."""
    return {kind: kind_buffer(buffer, kind) for kind in BULK_KINDS}


@dataclass(frozen=True)
class BufferAge:
    items: int
    oldest_age_seconds: float | None  # None: empty (or, for a list written before ages were kept, unknown)

    def as_dict(self) -> dict[str, int | float | None]:
        return asdict(self)


def reclaim_stale_claims(stores: Stores, older_than: float | None = None) -> int:
    """Put back into their buffers the claims older than `older_than` seconds (default
    `state.claims.RECLAIM_AFTER`); returns how many items went back."""
    return ClaimStore(stores.redis, stores.settings.key_prefix).reclaim_stale(older_than)


def _age(since: float | None, now: float) -> float | None:
    return None if since is None else round(max(0.0, now - since), 3)


def _since(client: redis.Redis, buffer: str) -> float | None:
    raw = client.get(RedisKeys.buffer_since(buffer))
    return float(raw) if raw else None


def buffer_ages(stores: Stores, now: float | None = None) -> dict[str, BufferAge]:
    """Each buffer's items and the age in seconds of its oldest item (`BUFFERS` names them). A list's and
    the outbox's age count from when it last became non-empty; a stock figure's from when it first became
    pending; a held stock figure's from when its SKU was first held; a claim's from when it was made."""
    now = time.time() if now is None else now
    client, prefix = stores.redis, stores.settings.key_prefix
    keys = RedisKeys(prefix)
    stock = StockState(client, prefix)
    ages: dict[str, BufferAge] = {}
    for name, buffer in (("order_bulk", keys.order_bulk_buffer), ("order_backfill", keys.backfill_bulk_buffer)):
        lists = [(int(client.llen(key)), key) for key in kind_buffers(buffer).values()]
        started = [s for n, key in lists if n and (s := _since(client, key)) is not None]
        items = sum(n for n, _ in lists)
        ages[name] = BufferAge(items, _age(min(started), now) if items and started else None)
    pending = int(client.hlen(stock.pending_key))
    ages["stock_pending"] = BufferAge(pending, _age(stock.oldest_pending_seen(), now) if pending else None)
    held, since = StockScans(client, prefix).held()
    ages["stock_held"] = BufferAge(held, _age(since, now))
    outbox = int(client.hlen(stock.outbox_key))
    ages["catalog_outbox"] = BufferAge(outbox, _age(_since(client, stock.outbox_key), now) if outbox else None)
    claimed, oldest = ClaimStore(client, prefix).open_claims()
    ages["open_claims"] = BufferAge(claimed, _age(oldest, now))
    return ages
