"""Error monitoring for long-running processes: Sentry when a DSN is configured, scrubbed of PII."""

from __future__ import annotations

from config.settings import get_settings


def init_monitoring() -> bool:
    try:
        from config.sentry import init_sentry
    except ImportError:  # pragma: no cover - sentry module ships with the package
        return False
    return bool(init_sentry(get_settings()))
