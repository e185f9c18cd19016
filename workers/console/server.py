"""`bcsync console`: check where it may listen, then serve the console with uvicorn."""

from __future__ import annotations

import getpass
import sys

import typer
import uvicorn

from config.settings import Settings, get_settings
from workers.console.auth import UsersError, hash_password, load_users, refusal


def print_hash() -> None:
    """`bcsync console --hash-password`: asks twice, prints the line's hash (the password is never echoed)."""
    first = getpass.getpass("password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if sys.stdin.isatty() and getpass.getpass("again: ") != first:
        typer.echo("bcsync console: the passwords differ", err=True)
        raise typer.Exit(2)
    if len(first) < 12:
        typer.echo("bcsync console: a password needs at least 12 characters", err=True)
        raise typer.Exit(2)
    typer.echo(hash_password(first))


def console_refusal(s: Settings, address: str | None = None) -> str | None:
    """Why the console must not start with these settings (unreadable users, or another address without
    users); None: it may. `bcsync run` asks before starting anything."""
    try:
        users = load_users(s.console_users.get_secret_value(), s.console_users_file)
    except UsersError as exc:
        return f"bcsync console: {exc}"
    return refusal(address or s.console_address, users)


def run_console(port: int | None, address: str | None) -> None:
    s = get_settings()
    host = address or s.console_address
    refused = console_refusal(s, host)
    if refused:
        typer.echo(refused, err=True)
        raise typer.Exit(2)
    users = load_users(s.console_users.get_secret_value(), s.console_users_file)
    from workers.console.app import build_app  # noqa: PLC0415  the templates and starlette: only when serving

    listen = port or s.console_port
    who = f"{len(users)} user(s)" if users else "read-only: no users configured"
    typer.echo(f"bcsync console on http://{host}:{listen} ({who})")
    uvicorn.run(build_app(s, users), host=host, port=listen, log_level="warning", access_log=False)
