"""Reading one page ahead: the next page of a Blue Cherry listing is fetched while the caller works on this one.

A backfill process spends about 40% of its time in the documents phase waiting for Blue Cherry's next page
(py-spy with idle time, `bench/backfill_orders.py`); the wait is on the socket, which releases the
interpreter, so a second thread can wait for it while the first stores or computes the page before.

Pages still reach the caller in order and one at a time; at most one page is held ahead (memory stays a page).
An error reading a page is raised to the caller when it asks for that page, as without read-ahead; pages read
before it are handed over first. A caller that stops early (an error of its own, a closed generator) leaves
at most the one page in flight to finish, and the listing is closed.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

T = TypeVar("T")
_END = object()


def read_ahead(pages: Iterator[T]) -> Iterator[T]:
    """`pages`, each next one fetched in a background thread while the caller holds the one before."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bluecherry-read-ahead") as pool:
        try:
            pending = pool.submit(next, pages, _END)
            while True:
                page = pending.result()
                if page is _END:
                    return
                pending = pool.submit(next, pages, _END)
                yield cast(T, page)
        finally:
            pool.shutdown(wait=True)  # the page in flight ends before the listing is closed
            close = getattr(pages, "close", None)
            if close is not None:
                close()
