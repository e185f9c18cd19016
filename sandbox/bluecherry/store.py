"""Record storage: one SQLite table of JSON records, indexed on (resource, last_mod, pkey).

Pages are cut at request time from that index, so ``$filter`` + ordering + paging are exact and memory stays
bounded however big the tenant is. ``pkey`` and ``last_mod`` live in columns (not in the JSON) so touching a
record is one UPDATE. ``nkey`` is the business key (customer code, order number, ``upc@location``, ...).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sandbox import exact_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    pkey INTEGER PRIMARY KEY AUTOINCREMENT,
    resource TEXT NOT NULL,
    nkey TEXT NOT NULL,
    last_mod TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS records_nkey ON records (resource, nkey);
CREATE INDEX IF NOT EXISTS records_order ON records (resource, last_mod, pkey);
CREATE TABLE IF NOT EXISTS skus (
    upc TEXT PRIMARY KEY,
    style TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class Row:
    pkey: int
    nkey: str
    last_mod: str
    body: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """The record as the API shows it: pkey first, last_mod last."""
        return {"pkey": self.pkey, **self.body, "last_mod": self.last_mod}


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class RecordStore:
    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        self.lock = threading.RLock()
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL" if path != ":memory:" else "PRAGMA journal_mode=MEMORY")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(SCHEMA)

    # --- transactions -------------------------------------------------------------------------
    def begin(self) -> None:
        self.db.execute("BEGIN")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def close(self) -> None:
        self.db.close()

    def clear(self) -> None:
        with self.lock:
            self.db.executescript(
                "DELETE FROM records; DELETE FROM skus; DELETE FROM counters;"
                "DELETE FROM sqlite_sequence WHERE name='records';"
            )

    def is_empty(self) -> bool:
        return self.db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None

    # --- records ------------------------------------------------------------------------------
    def put(self, resource: str, nkey: str, body: dict[str, Any], last_mod: str) -> int:
        """Insert or replace the record with this business key; returns its pkey (stable across edits)."""
        body = {k: v for k, v in body.items() if k not in ("pkey", "last_mod")}
        cur = self.db.execute(
            "INSERT INTO records (resource, nkey, last_mod, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (resource, nkey) DO UPDATE SET last_mod = excluded.last_mod, body = excluded.body "
            "RETURNING pkey",
            (resource, nkey, last_mod, _dumps(body)),
        )
        return int(cur.fetchone()[0])

    def insert_many(self, resource: str, rows: Iterable[tuple[str, str, str]]) -> None:
        """Bulk insert of (nkey, last_mod, body_json) rows, for the generator."""
        self.db.executemany(
            "INSERT INTO records (resource, nkey, last_mod, body) VALUES (?, ?, ?, ?)",
            ((resource, nkey, last_mod, body) for nkey, last_mod, body in rows),
        )

    def get(self, resource: str, nkey: str) -> Row | None:
        found = self.db.execute(
            "SELECT pkey, nkey, last_mod, body FROM records WHERE resource = ? AND nkey = ?", (resource, nkey)
        ).fetchone()
        return _row(found)

    def get_pkey(self, resource: str, pkey: int) -> Row | None:
        found = self.db.execute(
            "SELECT pkey, nkey, last_mod, body FROM records WHERE resource = ? AND pkey = ?", (resource, pkey)
        ).fetchone()
        return _row(found)

    def page(self, resource: str, where: str, params: list[Any], offset: int, limit: int) -> list[Row]:
        return [_row_required(r) for r in self._page(resource, where, params, offset, limit)]

    def page_stored(self, resource: str, where: str, params: list[Any], offset: int,
                    limit: int) -> list[tuple[int, str, str]]:
        """The rows of `page` as stored: (pkey, last_mod, body as JSON text), nothing parsed."""
        return [(int(r[0]), r[2], r[3]) for r in self._page(resource, where, params, offset, limit)]

    def _page(self, resource: str, where: str, params: list[Any], offset: int, limit: int) -> Any:
        sql = (
            "SELECT pkey, nkey, last_mod, body FROM records WHERE resource = ?"
            + (f" AND ({where})" if where else "")
            + " ORDER BY last_mod, pkey LIMIT ? OFFSET ?"
        )
        return self.db.execute(sql, [resource, *params, limit, offset])

    def touch(self, resource: str, pkeys: Iterable[int], last_mod: str) -> None:
        self.db.executemany(
            "UPDATE records SET last_mod = ? WHERE resource = ? AND pkey = ?",
            ((last_mod, resource, pkey) for pkey in pkeys),
        )

    def recent(self, resource: str, limit: int) -> list[Row]:
        """The most recently modified records (for live trading to pick from)."""
        cur = self.db.execute(
            "SELECT pkey, nkey, last_mod, body FROM records WHERE resource = ? "
            "ORDER BY last_mod DESC, pkey DESC LIMIT ?",
            (resource, limit),
        )
        return [_row_required(r) for r in cur]

    def oldest(self, resource: str, limit: int) -> list[Row]:
        return self.page(resource, "", [], 0, limit)

    def iterate(self, resource: str, batch: int = 2000) -> Iterator[Row]:
        """Every record of a resource in pkey order, fetched in batches (bounded memory)."""
        last = 0
        while True:
            with self.lock:
                rows = self.db.execute(
                    "SELECT pkey, nkey, last_mod, body FROM records WHERE resource = ? AND pkey > ? "
                    "ORDER BY pkey LIMIT ?",
                    (resource, last, batch),
                ).fetchall()
            if not rows:
                return
            for r in rows:
                yield _row_required(r)
            last = rows[-1][0]

    def count(self, resource: str) -> int:
        return int(self.db.execute("SELECT count(*) FROM records WHERE resource = ?", (resource,)).fetchone()[0])

    # --- SKU index (upc -> style, colour, size, price, status) -------------------------------
    def put_sku(self, upc: str, style: str, body: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO skus (upc, style, body) VALUES (?, ?, ?) "
            "ON CONFLICT (upc) DO UPDATE SET style = excluded.style, body = excluded.body",
            (upc, style, _dumps(body)),
        )

    def insert_skus(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self.db.executemany("INSERT INTO skus (upc, style, body) VALUES (?, ?, ?)", rows)

    def get_sku(self, upc: str) -> dict[str, Any] | None:
        found = self.db.execute("SELECT body FROM skus WHERE upc = ?", (upc,)).fetchone()
        return json.loads(found[0]) if found else None

    def sku_upcs(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT upc FROM skus ORDER BY rowid")]

    # --- document number counters -------------------------------------------------------------
    def next_number(self, name: str, start: int) -> int:
        cur = self.db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
            (name, start),
        )
        return int(cur.fetchone()[0])

    def set_counter(self, name: str, value: int) -> None:
        self.db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = ?",
            (name, value, value),
        )


def _row(found: Any) -> Row | None:
    return None if found is None else _row_required(found)


def _row_required(found: Any) -> Row:
    # orjson where it reads exactly: parsing rows was a quarter of the sandbox's time serving a page (issue 18)
    return Row(int(found[0]), found[1], found[2], exact_json.loads(found[3]))
