"""`bcsync sandbox klaviyo|bluecherry`: run one sandbox server in the foreground."""

from __future__ import annotations

from pathlib import Path

import typer

from sandbox.bluecherry.cli import bluecherry_command
from sandbox.klaviyo.config import FaultSettings, KlaviyoSandboxConfig

app = typer.Typer(help="Run a sandbox server (Klaviyo or Blue Cherry) on loopback.", no_args_is_help=True,
                  add_completion=False)  # run inside `bcsync sandbox`, whose completion is bcsync's


@app.command("klaviyo")
def klaviyo(
    port: int = typer.Option(0, help="Port to listen on (0 = a free port)."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    rate_scale: float = typer.Option(
        1.0, "--rate-scale", help="Multiply every rate limit (rounded up, >= 1)."
    ),
    no_rate_limits: bool = typer.Option(False, "--no-rate-limits", help="Never answer 429 for rate limits."),
    record: Path | None = typer.Option(None, "--record", help="Append one JSON line per request to FILE."),
    api_key: str | None = typer.Option(None, "--api-key", help="Accept only this private key (pk_...)."),
    error_rate: list[str] = typer.Option(
        [], "--error-rate", help="STATUS=RATE, e.g. 503=0.05 (repeatable; 500, 502, 503, 504)."
    ),
    latency_ms: float = typer.Option(0.0, "--latency-ms", help="Added latency per API request."),
    outage_seconds: float = typer.Option(0.0, "--outage-seconds", help="Answer 503 to everything for N s."),
    drop_rate: float = typer.Option(0.0, "--drop-rate", help="Probability of closing without a response."),
    slow_rate: float = typer.Option(0.0, "--slow-rate", help="Probability of holding a response back."),
    slow_seconds: float = typer.Option(30.0, "--slow-seconds", help="How long a slow response is held."),
    long_throttle: str | None = typer.Option(
        None, "--long-throttle", help='Endpoint answering 429 for hours, e.g. "POST /api/events".'
    ),
    long_throttle_seconds: int = typer.Option(67608, "--long-throttle-seconds", help="Its Retry-After."),
    other_share: float = typer.Option(
        0.0, "--other-integration-share", help="Fraction of every rate-limit window used by someone else."
    ),
    fault_endpoint: list[str] = typer.Option(
        [], "--fault-endpoint", help="Limit error/latency/drop/slow faults to this endpoint key (repeatable)."
    ),
    fault_seed: int | None = typer.Option(None, "--fault-seed", help="Seed for the fault dice."),
    invalid_phone: str = typer.Option(
        "refuse", "--invalid-phone", help="An invalid phone: refuse (400) or drop (ignored, partial-failure header)."
    ),
    profile_job_seconds: float | None = typer.Option(
        None, "--profile-job-seconds", help="Keep profile bulk import jobs processing this long."
    ),
    consent_job_delay: float = typer.Option(
        0.0, "--consent-job-delay-seconds", help="Apply subscription jobs no sooner than this after acceptance."
    ),
    consent_job_jitter: float = typer.Option(
        0.0, "--consent-job-jitter-seconds", help="Add a random [0, S) to each subscription job's delay."
    ),
    consent_job_reverse: bool = typer.Option(
        False, "--consent-job-reverse", help="Apply pending subscription jobs newest first."
    ),
) -> None:
    """The Klaviyo API sandbox (docs/sandbox.md)."""
    # imported here: the app needs the sandbox extra, which `bcsync sandbox --help` and `bcsync sandbox
    # bluecherry` do without; the server stack (uvicorn) loads only when a sandbox runs
    from sandbox.klaviyo.app import create_app  # noqa: PLC0415
    from sandbox.server import serve_forever  # noqa: PLC0415

    try:
        rates = {}
        for item in error_rate:
            status, _, rate = item.partition("=")
            rates[int(status)] = float(rate)
        faults = FaultSettings(
            error_rates=rates,
            latency_ms=latency_ms,
            outage_seconds=outage_seconds,
            drop_rate=drop_rate,
            slow_rate=slow_rate,
            slow_seconds=slow_seconds,
            long_throttle_endpoint=long_throttle,
            long_throttle_seconds=long_throttle_seconds,
            other_integration_share=other_share,
            endpoints=list(fault_endpoint) or None,
            seed=fault_seed,
            invalid_phone=invalid_phone,
            profile_job_seconds=profile_job_seconds,
            consent_job_delay_seconds=consent_job_delay,
            consent_job_jitter_seconds=consent_job_jitter,
            consent_job_reverse=consent_job_reverse,
        )
        config = KlaviyoSandboxConfig(
            rate_limit_scale=rate_scale,
            rate_limits_enabled=not no_rate_limits,
            record_path=record,
            faults=faults,
            api_key=api_key,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    serve_forever(create_app(config), "Klaviyo", host, port)


def _register_bluecherry() -> None:
    app.command("bluecherry")(bluecherry_command)


_register_bluecherry()
