"""`bcsync sandbox klaviyo` as a real process: prints its URL, serves, stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sandbox.cli import app
from sandbox.server import free_port
from tests.support.paths import REPO_ROOT
from tests.unit.sandbox.klaviyo.conftest import HEADERS

ROOT = REPO_ROOT


@pytest.mark.integration
def test_cli_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    record = tmp_path / "record.jsonl"
    command = [
        sys.executable, "-c", "from workers.entry import main; main()",
        "sandbox", "klaviyo", "--port", str(port), "--rate-scale", "0.1", "--record", str(record),
        "--error-rate", "500=0", "--latency-ms", "0", "--invalid-phone", "drop", "--profile-job-seconds", "2.5",
        "--consent-job-delay-seconds", "1.5", "--consent-job-jitter-seconds", "0.5", "--consent-job-reverse",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line == f"Klaviyo sandbox listening on http://127.0.0.1:{port}"
        url = line.rsplit(" ", 1)[1]
        response = httpx.get(f"{url}/api/profiles", headers=HEADERS, timeout=10)
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "75"  # 750/min x 0.1
        faults = httpx.get(f"{url}/_sandbox/faults", timeout=10).json()
        assert (faults["invalid_phone"], faults["profile_job_seconds"]) == ("drop", 2.5)
        consent_jobs = ("consent_job_delay_seconds", "consent_job_jitter_seconds", "consent_job_reverse")
        assert [faults[name] for name in consent_jobs] == [1.5, 0.5, True]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert record.read_text().count("\n") == 2  # control endpoints are recorded too


def test_cli_rejects_bad_fault_flags() -> None:
    result = CliRunner().invoke(app, ["klaviyo", "--error-rate", "418=0.5"])
    assert result.exit_code != 0


@pytest.mark.parametrize(
    ("flags", "setting"),
    [
        (["--invalid-phone", "ignore"], "invalid_phone"),
        (["--profile-job-seconds", "-1"], "profile_job_seconds"),
        (["--consent-job-delay-seconds", "-1"], "consent_job_delay_seconds"),
        (["--consent-job-jitter-seconds", "-1"], "consent_job_jitter_seconds"),
    ],
)
def test_cli_rejects_bad_identity_fault_flags(flags: list[str], setting: str) -> None:
    result = CliRunner().invoke(app, ["klaviyo", *flags])
    assert result.exit_code != 0
    assert setting in result.output
