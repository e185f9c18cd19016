"""Klaviyo's documented request limits, defined once: the body models enforce them, the builders check them
and the delivery engine sizes its messages by them."""

from __future__ import annotations

MAX_BULK_EVENTS = 1000  # events in one bulk create job
MAX_BULK_PROFILES = 10_000  # profiles in one bulk import job
MAX_SUBSCRIBE_PROFILES = 1000  # profiles in one subscription job
MAX_UNSUBSCRIBE_PROFILES = 100  # profiles in one unsubscription job
MAX_CATALOG_BULK_ROWS = 100  # items or variants in one catalog bulk job
MAX_REQUEST_BYTES = 5 * 1024 * 1024  # one request body
MAX_STRING_BYTES = 100 * 1024  # one string inside a body
