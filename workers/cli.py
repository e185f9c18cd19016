"""The `bcsync` command line: one entry point for operators and developers."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from config.collector import set_up_collector
from config.lanes import LANES
from config.settings import get_settings
from workers import dlq_cli, exceptions_cli, mapping_cli
from workers.audit import app as audit_app
from workers.backfill_cli import backfill_customers, backfill_orders
from workers.csv_drops import csv_drops
from workers.erase import erase
from workers.health import health
from workers.playbook import playbook
from workers.poller import app as poller_app
from workers.reconcile_cli import reconcile
from workers.report_cli import app as report_app

app = typer.Typer(help="Blue Cherry -> Klaviyo sync fleet.", no_args_is_help=True)


@app.callback()
def _set_up_the_process() -> None:
    """The settings, the mapping and Redis were checked before this module was imported (workers.entry)."""
    # one line per HTTP request to Blue Cherry or Klaviyo drowns what operators need to read
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # every command's modules are imported by now: they stay out of the collector's work from here on
    set_up_collector(get_settings().gc_young_threshold)


app.add_typer(dlq_cli.app, name="dlq")
app.add_typer(mapping_cli.app, name="mapping")
app.command("exceptions")(exceptions_cli.exceptions)


@app.command()
def worker(
    lane: Annotated[str, typer.Option(help="fast | default | batch")],
    concurrency: Annotated[int | None, typer.Option(help="pool processes (default from settings)")] = None,
    loglevel: str = "INFO",
) -> None:
    """One Celery worker consuming one lane (the same as `celery -A config.celery:app worker -Q LANE`)."""
    if lane not in LANES:
        raise typer.BadParameter(f"lane must be one of {', '.join(LANES)}", param_hint="--lane")
    # per command: the Celery app and Sentry are what only the worker, beat and Flower processes run
    from config.celery import app as celery_app  # noqa: PLC0415
    from workers.monitoring import init_monitoring  # noqa: PLC0415

    init_monitoring()
    argv = ["worker", "-Q", lane, "-n", f"{lane}@%h", f"--loglevel={loglevel}",
            f"--concurrency={concurrency or get_settings().worker_concurrency}", "--without-gossip",
            "--without-mingle"]
    celery_app.worker_main(argv)


@app.command()
def beat(loglevel: str = "INFO") -> None:
    """The beat scheduler (RedBeat: a second beat only waits for the lock)."""
    # per command: the Celery app and Sentry are what only the worker, beat and Flower processes run
    from config.celery import app as celery_app  # noqa: PLC0415
    from workers.monitoring import init_monitoring  # noqa: PLC0415

    init_monitoring()
    celery_app.start(["beat", f"--loglevel={loglevel}"])


@app.command()
def flower(
    port: Annotated[int | None, typer.Option(help="default BCSYNC_FLOWER_PORT")] = None,
    address: Annotated[str | None, typer.Option(help="listen address; default BCSYNC_FLOWER_ADDRESS (127.0.0.1)")]
    = None,
) -> None:
    """Flower, the Celery monitor: loopback unless told otherwise, and only behind basic auth with a real
    password (BCSYNC_FLOWER_USER / BCSYNC_FLOWER_PASSWORD, 12+ characters, not an example's)."""
    from workers.flower import flower_argv, refusal  # noqa: PLC0415

    s = get_settings()
    refused = refusal(address or s.flower_address, s.flower_user, s.flower_password.get_secret_value())
    if refused:
        typer.echo(refused, err=True)
        raise typer.Exit(2)
    from config.celery import app as celery_app  # noqa: PLC0415  per command: only Celery's processes run the app

    celery_app.start(flower_argv(s, address, port))


@app.command()
def metrics(
    port: Annotated[int | None, typer.Option(help="default BCSYNC_METRICS_PORT (9808)")] = None,
    address: Annotated[str | None, typer.Option(help="listen address; default BCSYNC_METRICS_ADDRESS (127.0.0.1)")]
    = None,
) -> None:
    """A Prometheus endpoint for the whole fleet (/metrics), read from Redis at each scrape: deliveries, queues,
    delayed retries, dead letters, exceptions, freshness, latency histograms, the limiter's budget use."""
    from workers.metrics import metrics_address, serve  # noqa: PLC0415  per command: only it serves metrics

    serve(*metrics_address(address, port))


@app.command()
def console(
    port: Annotated[int | None, typer.Option(help="default BCSYNC_CONSOLE_PORT (8055)")] = None,
    address: Annotated[str | None, typer.Option(help="listen address; default BCSYNC_CONSOLE_ADDRESS (127.0.0.1)")]
    = None,
    hash_password: Annotated[bool, typer.Option("--hash-password", help="print the hash of a password for a "
                                                "console user (BCSYNC_CONSOLE_USERS) and exit")] = False,
) -> None:
    """The operations console for the business teams (a web page): today's checks, exceptions, dead letters,
    a record's trail and the playbook. Loopback unless told otherwise; any other address needs users."""
    from workers.console.server import print_hash, run_console  # noqa: PLC0415  per command: only it serves

    if hash_password:
        print_hash()
        return
    run_console(port, address)


@app.command()
def run(
    poller: Annotated[bool, typer.Option(help="start the poller too")] = True,
    with_flower: Annotated[bool, typer.Option("--flower/--no-flower")] = True,
    with_metrics: Annotated[bool, typer.Option("--metrics/--no-metrics", help="the Prometheus endpoint")] = True,
    with_console: Annotated[bool, typer.Option("--console/--no-console", help="the operations console")] = True,
) -> None:
    """The whole fleet on this machine: three lanes, beat, poller, Flower, the console and the metrics endpoint,
    supervised."""
    from workers.fleet import Supervisor, fleet_children  # noqa: PLC0415  per command: only `bcsync run` supervises
    from workers.flower import refusal  # noqa: PLC0415

    s = get_settings()
    refused = with_flower and refusal(s.flower_address, s.flower_user, s.flower_password.get_secret_value())
    if refused:  # before anything starts: a Flower refused again on every restart helps nobody
        typer.echo(f"{refused}; or run with --no-flower", err=True)
        raise typer.Exit(2)
    if with_console:
        from workers.console.server import console_refusal  # noqa: PLC0415

        refused = console_refusal(s)
        if refused:
            typer.echo(f"{refused}; or run with --no-console", err=True)
            raise typer.Exit(2)

    Supervisor(fleet_children(with_poller=poller, with_flower=with_flower, with_metrics=with_metrics,
                              with_console=with_console)).run()


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Queues, delayed retries, dead letters, exceptions, rate budgets and Redis memory."""
    from workers.status import show_status  # noqa: PLC0415  per command: only `bcsync status` reports

    show_status(as_json)


@app.command()
def demo(
    minutes: Annotated[float, typer.Option(help="stop after this long (0 = until Ctrl-C)")] = 0.0,
) -> None:
    """Run the fleet against both sandboxes (live trading on) with a live view of what flows."""
    # The product imports sandbox/ only inside `bcsync demo` and `bcsync sandbox` (the import contracts), and
    # workers.demo runs the sandboxes, so only once the extra they need is known to be installed.
    from sandbox.extra import first_missing, install_hint  # noqa: PLC0415

    missing = first_missing()  # before anything starts: the sandboxes it runs need the extra
    if missing:
        typer.echo(install_hint("bcsync demo", missing), err=True)
        raise typer.Exit(2)
    from workers.demo import run_demo  # noqa: PLC0415

    run_demo(minutes)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,  # `bcsync sandbox --help` is the sandbox CLI's own help
)
def sandbox(ctx: typer.Context) -> None:
    """Run a sandbox server (Klaviyo or Blue Cherry) on loopback: `bcsync sandbox --help`."""
    # Loaded only when asked for: no fleet command imports the sandboxes or what only they need (the
    # `sandbox` extra). Without the extra, one line says how to install it, exit code 2.
    from sandbox.cli import app as sandbox_app  # noqa: PLC0415
    from sandbox.extra import install_hint, missing_from_extra  # noqa: PLC0415

    try:
        sandbox_app(args=ctx.args, prog_name="bcsync sandbox")
    except ImportError as exc:
        missing = missing_from_extra(exc)
        if missing is None:
            raise
        typer.echo(install_hint("bcsync sandbox", missing), err=True)
        raise typer.Exit(2) from None


def _register_flows() -> None:
    """Commands of the flows (poller, audit, backfills, erase, CSV drops), imported when the CLI starts."""
    app.add_typer(poller_app, name="poller")
    app.add_typer(audit_app, name="audit")
    backfill_app = typer.Typer(help="Historical loads on the batch lane (no flows fire).", no_args_is_help=True)
    backfill_app.command("customers")(backfill_customers)
    backfill_app.command("orders")(backfill_orders)
    app.add_typer(backfill_app, name="backfill")
    app.command("erase")(erase)
    app.command("csv-drops")(csv_drops)
    app.command("playbook")(playbook)
    app.command("health")(health)
    app.command("reconcile")(reconcile)
    app.add_typer(report_app, name="report")


_register_flows()


if __name__ == "__main__":
    # `python -m workers.cli` (tests, benches): the commands as they are. Operators run `bcsync`, the fleet's
    # children `python -m workers.entry`: those turn a bad setting or a Redis that does not answer into one line.
    app(prog_name="bcsync")
