"""Erasure in the domain: a change not newer than a customer's erasure is dropped (the tombstones and the
purge of the fleet's own state are in `state.erasure`)."""

from __future__ import annotations

STAMP_LENGTH = len("2026-01-01T00:00:00Z")


def version_stamp(version: str) -> str:
    """The UTC stamp part of a change version (``<stamp>#<sequence>``)."""
    return version[:STAMP_LENGTH]


