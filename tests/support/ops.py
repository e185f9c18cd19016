"""Small helpers shared by the ops tests."""

from __future__ import annotations

from typing import Any

from config.settings import Settings


def make_settings(**values: Any) -> Settings:
    """Settings from the given values and the defaults only: no `.env`, no ``BCSYNC_*`` of the machine."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
