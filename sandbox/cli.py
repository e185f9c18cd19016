"""`bcsync sandbox klaviyo|bluecherry`: run one sandbox server in the foreground."""

import typer

app = typer.Typer(help="Run a sandbox server (Klaviyo or Blue Cherry) on loopback.", no_args_is_help=True)
