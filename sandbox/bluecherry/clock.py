"""The sandbox's clock: settable, freezable, in the tenant's (settable) time zone.

Blue Cherry stamps ``last_mod`` in tenant-local wall time without a zone, at one-second resolution. The
clock keeps true time in UTC and renders it in the tenant zone, so stepping across a daylight-saving change
produces exactly the repeated (or skipped) local hour a real tenant produces.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STAMP = "%Y-%m-%d %H:%M:%S"


def parse_local(text: str) -> datetime:
    """Parse a tenant-local stamp (``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD``) into a naive datetime."""
    for fmt in (STAMP, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ValueError(f"'{text}' is not a tenant-local time (expected 'YYYY-MM-DD HH:MM:SS')")


def load_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{name}'") from exc


class SandboxClock:
    def __init__(self, timezone: str, start_local: str | None = None, frozen: bool = False) -> None:
        self._lock = threading.Lock()
        self.zone = load_zone(timezone)
        self._offset = 0.0  # virtual minus real seconds
        self._frozen_at: float | None = None
        if start_local is not None:
            self.set_local(start_local)
        if frozen:
            self.freeze()

    @property
    def timezone(self) -> str:
        return self.zone.key

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def timestamp(self) -> float:
        with self._lock:
            return self._frozen_at if self._frozen_at is not None else time.time() + self._offset

    def now_utc(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def now_local(self) -> str:
        return self.local_stamp(self.timestamp())

    def local_stamp(self, ts: float) -> str:
        return datetime.fromtimestamp(int(ts), self.zone).strftime(STAMP)

    def set_timezone(self, name: str) -> None:
        self.zone = load_zone(name)

    def set_local(self, text: str, fold: int = 0) -> None:
        """Set the clock to a tenant-local wall time; ``fold=1`` picks the second pass of a repeated hour."""
        target = parse_local(text).replace(tzinfo=self.zone, fold=fold).timestamp()
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at = target
            else:
                self._offset = target - time.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds

    def freeze(self) -> None:
        with self._lock:
            if self._frozen_at is None:
                self._frozen_at = time.time() + self._offset

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - time.time()
                self._frozen_at = None

    def as_dict(self) -> dict[str, object]:
        ts = self.timestamp()
        return {
            "now": self.local_stamp(ts),
            "utc": datetime.fromtimestamp(int(ts), UTC).isoformat(),
            "timezone": self.timezone,
            "utc_offset": str(datetime.fromtimestamp(ts, self.zone).utcoffset() or timedelta(0)),
            "frozen": self.frozen,
        }
