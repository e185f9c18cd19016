"""One atomic step per SKU (state/stock.py `update_sku`) on a real private Redis: threads storing rows of one SKU
at once keep the newest row of every warehouse and end with the figure of exactly what is stored; what follows
a figure (planned, pending) is written only while it is the newest."""

from __future__ import annotations

import random
import threading

import redis

from state.stock import SkuStep, StockState
from sync.stock.coalesce import PendingFigure, merge
from sync.stock.rows import Versioned, decode_all, encode, merge_newest
from sync.stock.versions import FigureVersion

SKU = "T100-BLK---M"


def store(state: StockState, warehouse: str, units: int, version: str) -> None:
    """A worker's step: keep the row if newer, figure = the sum of the stored units, versioned by all rows."""
    incoming = [(warehouse, Versioned({"units": units}, version))]

    def step(held: dict[str, str], _locations: dict[str, str]) -> SkuStep:
        rows = decode_all(held)
        changed = merge_newest(rows, incoming)
        if not changed:
            return SkuStep()
        rows.update(changed)
        units = sum(r.raw["units"] for r in rows.values())
        version = FigureVersion.of(r.version for r in rows.values()).encode()
        return SkuStep(rows={w: encode(r) for w, r in changed.items()}, figure=(SKU, units, version))

    state.update_sku(SKU, step)


def test_threads_storing_rows_of_one_sku_keep_the_newest_rows_and_their_figure(redis_client: redis.Redis) -> None:
    state = StockState(redis_client, "t")
    rng = random.Random(3)
    writes = [(w, rng.randrange(100), f"2026-11-20T15:00:{s:02d}Z#{q:06d}")
              for w in ("WH1", "WH2", "WH3") for s in range(10) for q in (1, 2)]
    rng.shuffle(writes)
    chunks = [writes[i::6] for i in range(6)]
    threads = [threading.Thread(target=lambda c=c: [store(state, *w) for w in c]) for c in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    newest = {w: max((x for x in writes if x[0] == w), key=lambda x: x[2]) for w in ("WH1", "WH2", "WH3")}
    held = state.rows(SKU)
    assert {w: (r.raw["units"], r.version) for w, r in held.items()} == {w: (u, v) for w, (_, u, v) in newest.items()}
    quantity = sum(u for _, u, _ in newest.values())
    assert state.figure(SKU) == (quantity, FigureVersion.of(v for _, _, v in newest.values()).encode())


def test_planned_and_pending_follow_only_the_newest_figure(redis_client: redis.Redis) -> None:
    state = StockState(redis_client, "p")
    old, new = (FigureVersion.of([f"2026-11-20T15:00:0{n}Z#000001"]).encode() for n in (1, 2))
    state.set_figure(SKU, 5, old)
    state.set_figure(SKU, 0, new)
    assert not state.plan_if_current(SKU, 5, old)  # a newer figure was computed meanwhile
    assert state.plan_if_current(SKU, 0, new) and state.planned([SKU]) == {SKU: (0, new)}
    state.fold_pending(SKU, lambda held: merge(held, SKU, 0, new, 10.0))
    state.fold_pending(SKU, lambda held: merge(held, SKU, 5, old, 11.0))  # older: kept out, clock restarted
    assert state.held_pending(SKU) == PendingFigure(SKU, 0, new, 10.0, 11.0)
    state.fold_pending(SKU, lambda held: None)
    assert state.held_pending(SKU) is None
