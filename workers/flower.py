"""`bcsync flower`: Flower, the Celery monitor, safe by default.

It listens on loopback unless an address is given (`--address`, BCSYNC_FLOWER_ADDRESS), and refuses to start
without basic-auth credentials it can trust: a user, and a password of at least `MIN_PASSWORD_CHARS` that is
not one published in examples or docs. Basic auth sends the password with every request: beyond loopback put a
TLS reverse proxy in front.
"""

from __future__ import annotations

import ipaddress
import os

from config.settings import Settings

MIN_PASSWORD_CHARS = 12
# passwords printed in this project's examples and docs, past and present: known to anyone who read them
PUBLISHED_PASSWORDS = frozenset({"change-me", "changeme", "admin", "password", "flower", "secret"})


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def refusal(address: str, user: str, password: str) -> str | None:
    """Why Flower must not start with these credentials on `address` (None: it may)."""
    where = f"on {address}" + ("" if is_loopback(address) else " (not loopback: reachable from other machines)")
    if not user or not password:
        return (f"bcsync flower: refusing to serve Flower {where} without credentials: set BCSYNC_FLOWER_USER and "
                f"BCSYNC_FLOWER_PASSWORD ({MIN_PASSWORD_CHARS}+ characters)")
    if password.lower() in PUBLISHED_PASSWORDS or password == user:
        return (f"bcsync flower: refusing to serve Flower {where} with a published example password: set "
                f"BCSYNC_FLOWER_PASSWORD to your own ({MIN_PASSWORD_CHARS}+ characters)")
    if len(password) < MIN_PASSWORD_CHARS:
        return (f"bcsync flower: refusing to serve Flower {where}: BCSYNC_FLOWER_PASSWORD has {len(password)} "
                f"characters, at least {MIN_PASSWORD_CHARS} are required")
    return None


def flower_argv(settings: Settings, address: str | None, port: int | None) -> list[str]:
    """Celery's argv for Flower; the credentials go through the environment (argv shows in `ps`)."""
    os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    return ["flower", f"--port={port or settings.flower_port}", f"--address={address or settings.flower_address}"]
