"""Error monitoring for long-running processes: Sentry when a DSN is configured, scrubbed of PII."""

from __future__ import annotations

from config.sentry import init_sentry
from config.settings import get_settings


def init_monitoring() -> bool:
    return bool(init_sentry(get_settings()))
