"""Sentry end to end: a real SDK in a real process sends to a loopback ingest; no secret is in the bytes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.integration.ops import sentry_probe as probe
from tests.integration.ops.sentry_ingest import SentryIngest
from tests.support.paths import REPO_ROOT

REPO = REPO_ROOT

# Every form in which the probe's secrets could leave the process.
FORBIDDEN = [
    probe.API_KEY, probe.SUBSCRIPTION_KEY,
    probe.EMAIL, quote(probe.EMAIL), quote(probe.EMAIL, safe=""), "jane.doe",
    probe.PHONE, probe.PHONE.lstrip("+"), quote(probe.PHONE, safe=""), probe.NATIONAL_PHONE, "900123",
]


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BCSYNC_", "SENTRY_"))}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.fixture
def ingest() -> Iterator[SentryIngest]:
    server = SentryIngest().start()
    yield server
    server.stop()


def run_probe(ingest: SentryIngest, mode: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.ops.sentry_probe", ingest.dsn, ingest.url, mode],
        cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


def payloads_of(ingest: SentryIngest, kind: str) -> list[dict]:
    return [json.loads(payload) for header, payload in ingest.items() if header.get("type") == kind]


@pytest.mark.integration
def test_nothing_secret_reaches_sentry_but_the_event_does(ingest: SentryIngest) -> None:
    run_probe(ingest, "scrubbed")

    errors = payloads_of(ingest, "event")
    assert [e["exception"]["values"][-1]["type"] for e in errors] == [probe.MARKER]
    error = errors[0]
    frame = error["exception"]["values"][-1]["stacktrace"]["frames"][-1]
    assert frame["function"] == "deliver" and frame["vars"], "locals were captured (and scrubbed)"
    assert any(crumb.get("category") == "bcsync.probe" for crumb in error["breadcrumbs"]["values"])

    transactions = payloads_of(ingest, "transaction")
    assert len(transactions) == 1
    http_spans = [span for span in transactions[0]["spans"] if span["op"] == "http.client"]
    assert len(http_spans) == 2, "the httpx calls were traced"
    assert any(span["data"].get("http.query") for span in http_spans), "the query survived as [email]"

    raw = b"\n".join(ingest.envelopes)
    leaked = [secret for secret in FORBIDDEN if secret.encode() in raw]
    assert leaked == [], f"sent to Sentry: {leaked}"
    assert b"[email]" in raw and b"[phone]" in raw and b"[Filtered]" in raw


@pytest.mark.integration
def test_the_probe_really_carries_secrets_without_the_scrubber(ingest: SentryIngest) -> None:
    """Guards the test above: with the hooks removed, the same run leaks, so a clean run is meaningful."""
    run_probe(ingest, "raw")
    raw = b"\n".join(ingest.envelopes)
    assert probe.MARKER.encode() in raw
    for secret in (probe.API_KEY, probe.EMAIL, probe.PHONE):
        assert secret.encode() in raw


def test_no_dsn_initialises_nothing() -> None:
    code = (
        "import sentry_sdk\n"
        "from config.sentry import init_sentry\n"
        "from config.settings import Settings\n"
        "assert init_sentry(Settings(_env_file=None)) is False\n"
        "assert not sentry_sdk.get_client().is_active()\n"
        "print('inactive')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "inactive"
