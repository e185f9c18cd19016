"""Sentry for the fleet: errors and (optionally) traces, with every secret and personal datum scrubbed.

``init_sentry(settings)`` turns the SDK on only when ``BCSYNC_SENTRY_DSN`` is set. Whatever the SDK would
send - errors, transactions and their spans, breadcrumbs - passes through one scrubber first, which removes
API keys (Klaviyo ``pk_...`` keys, ``Klaviyo-API-Key``/``Bearer`` credentials, Azure APIM subscription keys,
anything under a key such as ``authorization``/``api_key``/``password``/``token``), the configured secrets
verbatim, passwords in URLs, e-mail addresses (plain or URL-encoded, e.g. in Klaviyo ``filter=`` queries)
and phone numbers (E.164 and common national formats). A scrubber that fails drops the event (the SDK
treats an exception in ``before_send`` as "drop"), so failure is closed, never a leak.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Collection, Mapping
from functools import partial
from importlib import metadata
from typing import Any

from config.settings import Settings

FILTERED = "[Filtered]"
EMAIL_MARK = "[email]"
PHONE_MARK = "[phone]"

# Values under these keys are replaced whole, whatever they look like: a phone number stored without
# punctuation ("7700900123") cannot be recognised by shape, but it can by the name it is kept under.
SENSITIVE_KEY = re.compile(
    r"authori[sz]ation|api[-_ ]?key|apikey|subscription[-_ ]?key|password|passwd|secret|token|cookie"
    r"|credential|private[-_ ]?key|\bdsn\b|e-?mail|phone|\bsms\b|mobile",
    re.IGNORECASE,
)

# Credentials recognisable by shape. Order matters: the scheme/keyword forms first, so their values are
# gone before the e-mail and phone patterns look at what is left.
_CREDENTIAL_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Klaviyo-API-Key pk_...", "Bearer eyJ...", "Basic dXNlcjpwYXNz"
    (re.compile(r"((?i:Klaviyo-API-Key)|Bearer|Basic)(\s+|%20|\+)[A-Za-z0-9+/=._~\-]{12,}"),
     r"\1\2" + FILTERED),
    # key=value / key: value / 'key': 'value' in messages, reprs, headers and query strings
    (re.compile(
        r"((?:ocp-apim-)?subscription[-_]?key|api[-_]?key|apikey|authori[sz]ation|password|passwd|secret"
        r"|access[-_]?token|refresh[-_]?token|token)"
        r"((?:[\"']|%22|%27)?\s*(?:[:=]|%3[Aa]|%3[Dd])\s*(?:[\"']|%22|%27)?)"
        r"(?!\[Filtered\])[^\s\"',;&)\]}]+",
        re.IGNORECASE,
    ), r"\1\2" + FILTERED),
    # Klaviyo private API keys: "pk_" and 34 characters (shorter runs are identifiers such as pk_id)
    (re.compile(r"\bpk_[A-Za-z0-9]{16,}"), FILTERED),
    # user:password@host in URLs (Redis, AMQP, HTTP)
    (re.compile(r"([a-z][a-z0-9+.\-]*://[^/\s:@]*):[^/\s@]+@", re.IGNORECASE), r"\1:" + FILTERED + "@"),
)

# local@domain.tld, with "@" plain, URL-encoded once (%40) or twice (%2540); an encoded "+" (%2B, %252B)
# or quote (%22, %27) in the local part is taken with it, other escapes (%2C, %5B) end it.
_EMAIL = re.compile(
    r"(?:%(?:25)?2[27Bb]|[\w.+\-'])+(?:@|%40|%2540)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
    re.IGNORECASE,
)

_SEP = r"(?:[\s.\-()/]|%20|%28|%29|%2[Dd]){0,3}"
_PHONE_PATTERNS: tuple[re.Pattern[str], ...] = (
    # International: +44 20 7946 0958, +1 (555) 123-4567, %2B447700900123, 0044 7700 900123
    re.compile(r"(?:\+|%2[Bb]|(?<![\d.])00)[1-9](?:" + _SEP + r"\d){6,14}(?!\d)"),
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567
    re.compile(r"(?<!\w)(?:\(\d{3}\)\s?|\d{3}[\s.\-])\d{3}[\s.\-]\d{4}(?!\w)"),
    # Trunk-prefix national numbers: 07700 900123, 020 7946 0958, 06 12 34 56 78, 0612345678
    re.compile(r"(?<![\w.+\-])0\d{1,4}([ \-])\d{2,8}(?:\1\d{2,8}){0,3}(?!\w)"),  # one separator throughout
    re.compile(r"(?<![\w.+\-])0[1-9]\d{8,9}(?!\w)"),
)


def _phone_or_not(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group(0))
    # fewer than 9 digits is a date, a version or a short code, not a dialable number
    return PHONE_MARK if digits >= 9 else match.group(0)


def scrub_text(text: str, known_secrets: Collection[str] = ()) -> str:
    """``text`` with credentials, the given secret values, e-mail addresses and phone numbers replaced."""
    for secret in known_secrets:
        if len(secret) >= 6:  # shorter "secrets" would shred ordinary words
            text = text.replace(secret, FILTERED)
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    text = _EMAIL.sub(EMAIL_MARK, text)
    for phone in _PHONE_PATTERNS:
        text = phone.sub(_phone_or_not, text)
    return text


def scrub_value(value: Any, known_secrets: Collection[str] = ()) -> Any:
    """Any JSON-like value scrubbed throughout: strings by shape, mapping values also by their key."""
    if isinstance(value, str):
        return scrub_text(value, known_secrets)
    if isinstance(value, Mapping):
        cleaned: dict[Any, Any] = {}
        for key, item in value.items():
            name = scrub_text(key, known_secrets) if isinstance(key, str) else key
            if isinstance(key, str) and SENSITIVE_KEY.search(key) and item not in (None, "", [], {}):
                cleaned[name] = FILTERED
            else:
                cleaned[name] = scrub_value(item, known_secrets)
        return cleaned
    if isinstance(value, list | tuple):
        return [scrub_value(item, known_secrets) for item in value]
    return value


def scrub_event(
    event: dict[str, Any], hint: Any = None, known_secrets: Collection[str] = ()
) -> dict[str, Any]:
    """A whole Sentry event (error or transaction) scrubbed: exception values, frame locals, extra,
    contexts, request data, breadcrumbs, span descriptions and span data (e.g. ``http.query``)."""
    # "modules" maps installed packages to versions: nothing personal, and "phonenumbers" is no phone.
    modules = event.get("modules")
    scrubbed: dict[str, Any] = scrub_value({k: v for k, v in event.items() if k != "modules"}, known_secrets)
    if modules is not None:
        scrubbed["modules"] = modules
    return scrubbed


def scrub_breadcrumb(
    crumb: dict[str, Any], hint: Any = None, known_secrets: Collection[str] = ()
) -> dict[str, Any]:
    """A breadcrumb (log line, HTTP call, Celery message) scrubbed before the SDK even keeps it."""
    scrubbed: dict[str, Any] = scrub_value(crumb, known_secrets)
    return scrubbed


def configured_secrets(settings: Settings) -> tuple[str, ...]:
    """The secret values this process holds, scrubbed verbatim wherever they might be echoed."""
    values = (
        settings.klaviyo_api_key.get_secret_value(),
        settings.bluecherry_subscription_key.get_secret_value(),
        settings.flower_password.get_secret_value(),
    )
    return tuple(value for value in values if value)


def _release() -> str | None:
    try:
        return f"bcsync@{metadata.version('bcsync')}"
    except metadata.PackageNotFoundError:
        return None


def sentry_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments for ``sentry_sdk.init``; pure, so the policy can be tested without the SDK."""
    # imported here: the SDK loads only when Sentry is on (~0.5 s with its Celery integration)
    from sentry_sdk.integrations.celery import CeleryIntegration  # noqa: PLC0415
    from sentry_sdk.integrations.httpx import HttpxIntegration  # noqa: PLC0415
    from sentry_sdk.integrations.logging import LoggingIntegration  # noqa: PLC0415

    secrets = configured_secrets(settings)
    hook: Callable[..., dict[str, Any]] = partial(scrub_event, known_secrets=secrets)
    rate = settings.sentry_traces_sample_rate
    return {
        "dsn": settings.sentry_dsn.get_secret_value(),
        "environment": settings.sentry_environment,
        "release": _release(),
        "send_default_pii": False,
        # Tracing is opt-in: None (not 0.0) keeps the SDK from even creating transactions.
        "traces_sample_rate": rate if rate > 0 else None,
        # Outbound calls go to Klaviyo and Blue Cherry only: they have no use for our trace headers.
        "trace_propagation_targets": [],
        # Only the integrations we vouch for; auto-enabled ones (redis, starlette, ...) would add spans
        # for every limiter call and instrument the sandboxes in the demo.
        "auto_enabling_integrations": False,
        "integrations": [
            CeleryIntegration(monitor_beat_tasks=False),
            HttpxIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
        "before_send": hook,
        "before_send_transaction": hook,
        "before_breadcrumb": partial(scrub_breadcrumb, known_secrets=secrets),
    }


def init_sentry(settings: Settings) -> bool:
    """Start the Sentry SDK for this process when a DSN is configured; ``True`` when it was started."""
    if not settings.sentry_dsn.get_secret_value():
        return False
    import sentry_sdk  # noqa: PLC0415  the SDK loads only when a DSN is set (~0.3 s)

    sentry_sdk.init(**sentry_options(settings))
    return True


def report_message(message: str, *, level: str = "warning", tags: Mapping[str, str] | None = None,
                   fingerprint: Collection[str] = ()) -> bool:
    """Send `message` to Sentry (scrubbed like every event) when this process started the SDK; ``True`` when
    it was handed to the SDK. Callers decide how often: the freshness check once per crossing."""
    sdk = sys.modules.get("sentry_sdk")  # loaded by init_sentry only: no DSN, no SDK, nothing to send
    if sdk is None or not sdk.get_client().is_active():
        return False
    with sdk.new_scope() as scope:
        for key, value in (tags or {}).items():
            scope.set_tag(key, value)
        if fingerprint:
            scope.fingerprint = list(fingerprint)
        sdk.capture_message(message, level=level)
    return True
