"""Erasure in the domain: a change not newer than a customer's erasure is dropped (the tombstones and the
purge of the fleet's own state are in `state.erasure`). A change is compared with an erasure by the last_mod
UTC stamp its version carries (`version_stamp`: either version format, see sync.changes)."""

from __future__ import annotations

from sync.changes import version_stamp

__all__ = ["version_stamp"]
