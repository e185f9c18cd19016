"""Inventory rows and location records as the fleet stores them: the raw record and its version (pure).

A stored entry is JSON ``{"raw": <record>, "version": <record version>}`` (see `sync.stock.versions`). A newer
version replaces the held entry; an equal one is the same change read again and changes nothing. Entries of
before versions are still read: an inventory row ``{"raw", "last_mod"}`` gets `legacy_row_version`, a
location stored as its bare record gets "" (any read since replaces it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sync.stock.versions import legacy_row_version


@dataclass(frozen=True, slots=True)
class Versioned:
    raw: dict[str, Any]
    version: str


def encode(entry: Versioned) -> str:
    return json.dumps({"raw": entry.raw, "version": entry.version}, default=str)


def decode(text: str, timezone: str = "UTC") -> Versioned:
    doc = json.loads(text)
    if isinstance(doc, dict) and isinstance(doc.get("raw"), dict):
        version = doc.get("version")
        if isinstance(version, str):
            return Versioned(doc["raw"], version)
        return Versioned(doc["raw"], legacy_row_version(str(doc.get("last_mod") or ""), timezone))
    return Versioned(doc if isinstance(doc, dict) else {}, "")


def decode_all(held: Mapping[str, str], timezone: str = "UTC") -> dict[str, Versioned]:
    return {field: decode(text, timezone) for field, text in held.items()}


def newer(candidate: Versioned, held: Versioned | None) -> bool:
    return held is None or candidate.version > held.version


def merge_newest(held: Mapping[str, Versioned], incoming: Iterable[tuple[str, Versioned]]) -> dict[str, Versioned]:
    """The incoming entries (by field: warehouse, location code) newer than what is held and than any
    other incoming entry of the same field: what to write."""
    changed: dict[str, Versioned] = {}
    for field, entry in incoming:
        if newer(entry, changed.get(field) or held.get(field)):
            changed[field] = entry
    return changed
