"""Run as ``python -m tests.integration.ops.sentry_probe DSN TARGET_URL MODE``: starts Sentry the way the fleet does and
makes it send one error (message, locals, breadcrumbs full of secrets) and one transaction (an httpx span to a
URL whose filter carries an e-mail). A separate process because the SDK's state is process-global.

MODE is ``scrubbed`` (``init_sentry`` as production runs it) or ``raw`` (same options without the scrub
hooks: proves the secrets really reach the payload, so the scrubbed run's clean bill means something).
"""

from __future__ import annotations

import logging
import sys

import httpx
import sentry_sdk

from config.sentry import init_sentry, sentry_options
from tests.support.ops import make_settings

API_KEY = "pk_5f3c2a9e8d7b6a5f4e3d2c1b0a9f8e7d6c"
SUBSCRIPTION_KEY = "9b8a7c6d5e4f30211203f4e5d6c7b8a9"
EMAIL = "jane.doe+vip@example.co.uk"
PHONE = "+447700900123"
NATIONAL_PHONE = "07700 900123"
MARKER = "ProbeDeliveryError"


class ProbeDeliveryError(Exception):
    pass


def deliver(email: str, phone: str) -> None:
    # locals the SDK captures with the frame
    api_key = API_KEY
    headers = {"Authorization": f"Klaviyo-API-Key {api_key}", "Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}
    profile = {"email": email, "phone_number": phone, "note": f"call {NATIONAL_PHONE}"}
    raise ProbeDeliveryError(
        f"Klaviyo refused {profile['email']} / {phone} sent with {headers['Authorization']}"
        f" (subscription-key={SUBSCRIPTION_KEY})"
    )


def main(dsn: str, target: str, mode: str) -> None:
    settings = make_settings(
        sentry_dsn=dsn, sentry_traces_sample_rate=1.0, sentry_environment="probe",
        klaviyo_api_key="", bluecherry_subscription_key="",  # scrubbing by shape, not by knowing the value
    )
    if mode == "raw":
        options = sentry_options(settings)
        for hook in ("before_send", "before_send_transaction", "before_breadcrumb"):
            options.pop(hook)
        sentry_sdk.init(**options)
    elif not init_sentry(settings):
        raise SystemExit("init_sentry refused a DSN")

    log = logging.getLogger("bcsync.probe")
    log.setLevel(logging.INFO)
    log.info("upserting %s (%s) with Klaviyo-API-Key %s", EMAIL, PHONE, API_KEY)
    sentry_sdk.add_breadcrumb(
        category="probe", message=f"lookup {EMAIL}",
        data={"url": f"/api/profiles?filter=any(email,[\"{EMAIL}\"])", "contact": NATIONAL_PHONE},
    )
    sentry_sdk.set_extra("customer", {"mail": EMAIL, "tel": PHONE})
    sentry_sdk.set_context("delivery", {"headers": {"Ocp-Apim-Subscription-Key": SUBSCRIPTION_KEY}})

    with sentry_sdk.start_transaction(op="celery.task", name="tasks.profiles.upsert"):
        with httpx.Client(timeout=10) as client:
            client.get(f"{target}/api/profiles", params={"filter": f'any(email,["{EMAIL}"])'},
                       headers={"Authorization": f"Klaviyo-API-Key {API_KEY}"})
            client.get(f"{target}/api/profiles?filter=equals(phone_number,\"{PHONE}\")")
        with sentry_sdk.start_span(op="probe.lookup", name=f"lookup {EMAIL} {PHONE}") as span:
            span.set_data("query", f"email={EMAIL}&api_key={API_KEY}")
        try:
            deliver(EMAIL, PHONE)
        except ProbeDeliveryError:
            sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=15)


if __name__ == "__main__":
    main(*sys.argv[1:4])
