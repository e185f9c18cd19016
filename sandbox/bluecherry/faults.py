"""Fault injection: throttling, server errors, slow pages, and malformed records.

Request faults are drawn from a seeded RNG, so a run is repeatable. Malformed records are chosen by a hash
of (seed, resource, pkey, last_mod): a record stays malformed in the same way until it is modified again, as
bad data in a real ERP does. Only the served copy is damaged, never the stored one.
"""

from __future__ import annotations

import copy
import random
import zlib
from collections import Counter
from typing import Any

from sandbox.bluecherry.config import FaultConfig

KINDS: dict[str, tuple[str, ...]] = {
    "customer": (
        "missing_email",
        "invalid_email",
        "bad_phone",
        "impossible_date",
        "broken_encoding",
        "oversized_text",
    ),
    "order": (
        "unknown_status",
        "negative_qty",
        "impossible_date",
        "broken_encoding",
        "oversized_text",
        "missing_email",
    ),
    "pick": ("unknown_status", "negative_qty", "impossible_date"),
    "invoice": ("negative_qty", "impossible_date"),
    "creditmemo": ("negative_qty", "impossible_date"),
    "style": ("unknown_status", "broken_encoding", "oversized_text"),
}
STATUS_FIELD = {"order": "ord_status", "pick": "pick_status", "style": "status", "customer": "status"}
DATE_FIELD = {
    "customer": "created",
    "order": "ord_date",
    "pick": "pick_date",
    "invoice": "inv_date",
    "creditmemo": "memo_date",
}
LINES = {
    "order": ("orderdetail", "ord_qty"),
    "pick": ("pickdetail", "total_qty"),
    "invoice": ("invoicedetail", "inv_qty"),
    "creditmemo": ("memodetail", "ret_qty"),
}
TEXT_FIELD = {"customer": "name", "order": "hold_reason", "style": "style_desc"}


def mojibake(text: str) -> str:
    """UTF-8 bytes read as cp1252, plus a replacement character: what a broken export pipeline leaves."""
    return text.encode("utf-8").decode("cp1252", errors="replace") + "\ufffd"


def corrupt(resource: str, record: dict[str, Any], kind: str, date_field: str | None = None) -> dict[str, Any]:
    """A damaged copy; `date_field` is where an impossible date goes (default: the resource's document date)."""
    rec = copy.deepcopy(record)
    if kind == "missing_email":
        if resource == "customer":
            rec["email"] = ""
        for row in rec.get("orderaddress", rec.get("custaddress", {})).get("rows", []):
            row["email"] = ""
    elif kind == "invalid_email":
        rec["email"] = rec.get("email", "").replace("@", " at ") or "not-an-email"
    elif kind == "bad_phone":
        rec["phone"] = "call after 5"
    elif kind == "unknown_status":
        rec[STATUS_FIELD[resource]] = "Z"
    elif kind == "negative_qty":
        _negative_qty(resource, rec)
    elif kind == "impossible_date":
        rec[date_field or DATE_FIELD[resource]] = "2026-02-30 25:61:00"
    elif kind == "broken_encoding":
        field = {"customer": "name", "order": "web_ref", "style": "style_name"}[resource]
        rec[field] = mojibake(str(rec.get(field, "")) + " Renée")
    elif kind == "oversized_text":
        rec[TEXT_FIELD[resource]] = "X" * 70000
    return rec


def _negative_qty(resource: str, rec: dict[str, Any]) -> None:
    """A negative quantity on the first line (or, without lines, an unknown status or a negative total)."""
    rows, field = LINES[resource]
    if rec.get(rows, {}).get("rows"):
        rec[rows]["rows"][0][field] = -abs(rec[rows]["rows"][0][field] or 1)
    elif resource in STATUS_FIELD:  # children not included: damage what is there
        rec[STATUS_FIELD[resource]] = "Z"
    else:
        rec["total_amt"] = -abs(rec.get("total_amt") or 1.0)


class FaultState:
    def __init__(self, config: FaultConfig, seed: int, date_fields: dict[str, str | None] | None = None) -> None:
        self.config = config
        self.seed = seed
        # a tenant dialect's own date field per resource for impossible_date (None: it shows no date there)
        self.date_fields = date_fields or {}
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()

    def request_fault(self) -> tuple[int, dict[str, str]] | None:
        """A status code (and headers) to answer instead of the data, or None."""
        cfg = self.config
        if cfg.rate_429 and self.rng.random() < cfg.rate_429:
            self.injected["429"] += 1
            return 429, {"Retry-After": str(cfg.retry_after_seconds)}
        if cfg.rate_5xx and self.rng.random() < cfg.rate_5xx:
            self.injected[str(cfg.status_5xx)] += 1
            return cfg.status_5xx, {}
        return None

    def slow_seconds(self) -> float:
        cfg = self.config
        if cfg.slow_seconds and cfg.slow_rate and self.rng.random() < cfg.slow_rate:
            self.injected["slow_page"] += 1
            return cfg.slow_seconds
        return 0.0

    def _kinds(self, resource: str) -> tuple[str, ...]:
        """The kinds of damage a record of `resource` can get now (none while the rate is 0)."""
        cfg = self.config
        kinds = KINDS.get(resource, ())
        if resource in self.date_fields and self.date_fields[resource] is None:
            kinds = tuple(k for k in kinds if k != "impossible_date")
        if cfg.malformed_kinds:
            kinds = tuple(k for k in kinds if k in cfg.malformed_kinds)
        return kinds if cfg.malformed_rate else ()

    def malformed_kind(self, resource: str, pkey: int, last_mod: str) -> str | None:
        cfg = self.config
        kinds = self._kinds(resource)
        if not kinds:
            return None
        h = zlib.crc32(f"{self.seed}:{resource}:{pkey}:{last_mod}".encode())
        if (h & 0xFFFF) / 0x10000 >= cfg.malformed_rate:
            return None
        return kinds[(h >> 16) % len(kinds)]

    def may_damage(self, resource: str) -> bool:
        """Whether `damage` could change any record of `resource` now (no: its pages may be served as stored)."""
        return bool(self._kinds(resource))

    def damage(self, resource: str, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        out, notes = [], []
        for rec in records:
            kind = self.malformed_kind(resource, rec["pkey"], rec["last_mod"])
            damaged = rec if kind is None else corrupt(resource, rec, kind, self.date_fields.get(resource))
            if damaged is not rec and damaged != rec:  # e.g. blanking an empty email changes nothing
                self.injected[f"malformed:{kind}"] += 1
                notes.append(f"{rec['pkey']}={kind}")
            out.append(damaged)
        return out, notes
