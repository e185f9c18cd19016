"""`bcsync sandbox klaviyo|bluecherry`: run one sandbox server in the foreground."""

import typer

app = typer.Typer(help="Run a sandbox server (Klaviyo or Blue Cherry) on loopback.", no_args_is_help=True)


def _register_bluecherry() -> None:
    from sandbox.bluecherry.cli import bluecherry_command

    app.command("bluecherry")(bluecherry_command)


_register_bluecherry()
