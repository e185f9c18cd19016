"""The half-open probe: while work waits out a Klaviyo outage, one worker at a time asks Klaviyo a small
question every few seconds; the first answer resumes the waiting work (`state.outage`)."""

from __future__ import annotations

import logging

from connectors.klaviyo.errors import KlaviyoError, ThrottledError, TransientError
from delivery.runtime import Runtime

log = logging.getLogger(__name__)

PROBE_EVERY_SECONDS = 2.0


def probe_after_outage(rt: Runtime) -> int:
    """Probe Klaviyo if an outage is on record; returns how many waiting entries resumed (0 if none)."""
    outage = rt.stores.outage
    if outage.since() is None or not outage.may_probe(PROBE_EVERY_SECONDS):
        return 0
    try:
        rt.client("batch").request("profiles:get", params={"page[size]": 1})
    except KlaviyoError as exc:
        # down exactly when the engine would call the same answer an outage (delivery.engine._retry notes
        # waiting work on a TransientError): a 5xx, a 408, a timeout, no connection; our own budget (no status)
        # says nothing either way. Resuming on a 408 would re-run every waiting envelope into the same failure
        # every few seconds, each run one attempt nearer its dead letter.
        if exc.status is None or (isinstance(exc, TransientError) and not isinstance(exc, ThrottledError)):
            log.info("Klaviyo still unavailable (%s); waiting work keeps its backoff", exc)
            return 0
        # any other 4xx, or a 429, is Klaviyo answering: the outage is over (what is wrong is the request's business)
    resumed = outage.resume()
    if resumed > 0:
        log.warning("Klaviyo answers again: %d waiting envelope(s) resume now", resumed)
    return max(0, resumed)
