"""`bcsync sandbox bluecherry`: the Blue Cherry sandbox in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

from sandbox.bluecherry.config import BlueCherrySandboxConfig, FaultConfig


def bluecherry_command(
    port: Annotated[int, typer.Option(help="Port to listen on (0 = a free one).")] = 8701,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    key: Annotated[str, typer.Option(help="The Ocp-Apim-Subscription-Key clients must send.")] = "sandbox-key",
    seed: Annotated[int, typer.Option(help="Seed of the generated tenant and of the faults.")] = 7,
    customers: Annotated[int, typer.Option(help="Customers to generate.")] = 200,
    styles: Annotated[int, typer.Option(help="Styles to generate (each 2-4 colours x sizes).")] = 30,
    orders: Annotated[int, typer.Option(help="Historic orders to generate.")] = 500,
    history_days: Annotated[int, typer.Option(help="Days of order history.")] = 365,
    timezone: Annotated[str, typer.Option(help="Tenant time zone of last_mod stamps.")] = "America/New_York",
    start_time: Annotated[str | None, typer.Option(help="Tenant-local start time of the clock.")] = None,
    db: Annotated[str, typer.Option(help="SQLite file (reused if it holds a tenant) or :memory:.")] = ":memory:",
    csv_dir: Annotated[str | None, typer.Option(help="Folder for CSV report drops.")] = None,
    csv_interval: Annotated[float, typer.Option(help="Seconds between scheduled CSV drops (0 = off).")] = 0.0,
    csv_encoding: Annotated[str, typer.Option(help="Encoding of the CSV files.")] = "cp1252",
    live: Annotated[bool, typer.Option(help="Start live trading at the default rates.")] = False,
    dialect: Annotated[
        str, typer.Option(help="How the tenant names and shapes its records: default or ibmi (docs/sandbox.md).")
    ] = "default",
    rate_429: Annotated[float, typer.Option(help="Probability of a 429 per API request.")] = 0.0,
    retry_after: Annotated[int, typer.Option(help="Retry-After seconds of an injected 429.")] = 1,
    rate_5xx: Annotated[float, typer.Option(help="Probability of a 5xx per API request.")] = 0.0,
    status_5xx: Annotated[int, typer.Option(help="Status code of injected server errors.")] = 503,
    slow_rate: Annotated[float, typer.Option(help="Probability that a page is slow.")] = 0.0,
    slow_seconds: Annotated[float, typer.Option(help="Delay of a slow page.")] = 0.0,
    modify_while_paging: Annotated[int, typer.Option(help="Records of each full page touched after serving.")] = 0,
    malformed_rate: Annotated[float, typer.Option(help="Share of served records that are malformed.")] = 0.0,
) -> None:
    """Run the Blue Cherry (bcapi) sandbox until SIGTERM / Ctrl-C."""
    # imported here: the server stack (starlette, uvicorn, ~0.25 s) loads only when this sandbox runs, not
    # for `bcsync sandbox --help` or the Klaviyo sandbox
    from sandbox.bluecherry.app import create_app  # noqa: PLC0415
    from sandbox.server import serve_forever  # noqa: PLC0415

    faults = FaultConfig(
        rate_429=rate_429,
        retry_after_seconds=retry_after,
        rate_5xx=rate_5xx,
        status_5xx=status_5xx,
        slow_rate=slow_rate,
        slow_seconds=slow_seconds,
        modify_while_paging=modify_while_paging,
        malformed_rate=malformed_rate,
    )
    try:
        faults.update({})  # same validation as the control endpoint
        for name in ("rate_429", "rate_5xx", "slow_rate", "malformed_rate"):
            faults.update({name: getattr(faults, name)})
        config = BlueCherrySandboxConfig(
            subscription_key=key,
            timezone=timezone,
            seed=seed,
            customers=customers,
            styles=styles,
            orders=orders,
            history_days=history_days,
            start_time=start_time,
            database=db,
            faults=faults,
            csv_drop_dir=csv_dir,
            csv_interval=csv_interval,
            csv_encoding=csv_encoding,
            live=live,
            dialect=dialect,
        )
        app = create_app(config)
    except ValueError as exc:
        typer.echo(f"bluecherry sandbox: {exc}", err=True)
        raise typer.Exit(2) from None
    # uvicorn re-raises the SIGTERM/SIGINT it handled once it has shut down gracefully; with the default
    # handlers that kills the process (exit -15). No-op handlers let a clean shutdown end with exit code 0.
    serve_forever(app, "Blue Cherry", host, port)
