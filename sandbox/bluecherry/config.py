"""Settings of one Blue Cherry sandbox instance: tenant size, clock, faults, CSV drops, live trading."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class FaultConfig:
    """Injected faults. Rates are probabilities per request (or per served record for ``malformed_rate``)."""

    rate_429: float = 0.0
    retry_after_seconds: int = 1
    rate_5xx: float = 0.0
    status_5xx: int = 503
    slow_rate: float = 0.0
    slow_seconds: float = 0.0
    modify_while_paging: int = 0  # records of the page just served to touch before the next page is read
    malformed_rate: float = 0.0
    malformed_kinds: tuple[str, ...] = ()  # empty = every kind that fits the resource
    hang: float = 0.0  # non-zero: every /api request is held without any answer until this is 0 again

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault setting '{name}' (known: {', '.join(sorted(known))})")
            current = getattr(self, name)
            if isinstance(current, tuple):
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"fault setting '{name}' must be a list of strings, got {value!r}")
                setattr(self, name, tuple(value))
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"fault setting '{name}' must be a number, got {value!r}")
            if name.startswith("rate") or name.endswith("_rate"):
                if not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"fault setting '{name}' is a probability in [0, 1], got {value!r}")
            elif value < 0:
                raise ValueError(f"fault setting '{name}' must not be negative, got {value!r}")
            setattr(self, name, type(current)(value))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}


@dataclass
class LiveRates:
    """Events per minute of the "live trading" mode (the demo's heartbeat)."""

    customers: float = 6.0
    consent_changes: float = 4.0
    customer_edits: float = 2.0
    orders: float = 20.0
    confirms: float = 18.0
    ships: float = 12.0
    cancels: float = 2.0
    returns: float = 2.0
    stock_adjustments: float = 6.0
    bursts: float = 0.0  # same-second bursts of `burst_size` customer records
    burst_size: int = 300

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name for f in fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown live rate '{name}' (known: {', '.join(sorted(known))})")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"live rate '{name}' must be a non-negative number, got {value!r}")
            setattr(self, name, type(getattr(self, name))(value))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class BlueCherrySandboxConfig:
    subscription_key: str = "sandbox-key"
    timezone: str = "America/New_York"
    seed: int = 7
    customers: int = 200
    styles: int = 30
    orders: int = 500
    history_days: int = 365
    storefront_every: int = 0  # every Nth generated web order comes from the storefront channel (generate_tenant)
    dialect: str = "default"  # how records are named and shaped on the wire (sandbox/bluecherry/dialects.py)
    start_time: str | None = None  # tenant-local "YYYY-MM-DD HH:MM:SS"; None = the real time
    frozen: bool = False
    database: str = ":memory:"  # a file path keeps big tenants out of memory and reuses them on restart
    faults: FaultConfig = field(default_factory=FaultConfig)
    csv_drop_dir: str | None = None
    csv_interval: float = 0.0  # seconds between scheduled drops; 0 = only on request
    csv_encoding: str = "cp1252"
    live: bool = False
    live_rates: LiveRates = field(default_factory=LiveRates)
    live_tick_seconds: float = 1.0
