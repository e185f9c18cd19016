"""The `bcsync` command line: one entry point for operators and developers."""

from __future__ import annotations

import typer

from sandbox.cli import app as sandbox_app

app = typer.Typer(help="Blue Cherry -> Klaviyo sync fleet.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


def main() -> None:
    app()
