"""Console users, their roles and password hashes, and the rule for where the console may listen.

Users come from BCSYNC_CONSOLE_USERS (`name:role:hash` separated by commas or newlines) and/or the file named
by BCSYNC_CONSOLE_USERS_FILE (one `name role hash` or `name:role:hash` per line, `#` comments). A hash is
`scrypt$<n>$<r>$<p>$<salt hex>$<key hex>` from the standard library's hashlib.scrypt (no extra dependency):
`bcsync console --hash-password` prints one. Roles grow: a viewer reads, an operator also acknowledges and
resolves exceptions and requeues dead letters, an admin also purges.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from workers.flower import is_loopback

Role = Literal["viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
# scrypt's cost: ~16 MiB and ~50 ms per sign-in on a small host, far too slow to guess through
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class UsersError(ValueError):
    """A users setting or file that cannot be read: the message names where and which line."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    password_hash: str

    def may(self, role: Role) -> bool:
        """True when this user's role includes `role` (admin > operator > viewer)."""
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(bytes.fromhex(key)), maxmem=2**26)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), key)


def parse_users(text: str, where: str) -> dict[str, User]:
    users: dict[str, User] = {}
    for n, raw in enumerate(text.replace(",", "\n").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(":") if ":" in line and " " not in line else line.split()
        if len(parts) != 3:
            raise UsersError(f"{where} line {n}: expected 'name role hash', got {len(parts)} part(s)")
        name, role, hashed = parts
        if role not in ROLES:
            raise UsersError(f"{where} line {n}: user {name!r} has role {role!r}, not one of {', '.join(ROLES)}")
        if not hashed.startswith("scrypt$") or hashed.count("$") != 5:
            raise UsersError(f"{where} line {n}: user {name!r}: the password must be a hash from "
                             "`bcsync console --hash-password`, not the password itself")
        users[name] = User(name, role, hashed)
    return users


def load_users(inline: str, path: str) -> dict[str, User]:
    """The users of BCSYNC_CONSOLE_USERS and BCSYNC_CONSOLE_USERS_FILE (the file's win on a shared name)."""
    users = parse_users(inline, "BCSYNC_CONSOLE_USERS") if inline.strip() else {}
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsersError(f"BCSYNC_CONSOLE_USERS_FILE={path}: cannot read it ({exc.strerror})") from None
        users |= parse_users(text, path)
    return users


def refusal(address: str, users: dict[str, User]) -> str | None:
    """Why the console must not listen on `address` with these users (None: it may). Flower's rule
    (workers.flower): loopback unless told otherwise, and never reachable from other machines without sign-in."""
    if not users and not is_loopback(address):
        return (f"bcsync console: refusing to serve on {address} (not loopback: reachable from other machines) "
                "without users: set BCSYNC_CONSOLE_USERS or BCSYNC_CONSOLE_USERS_FILE (hashes from "
                "`bcsync console --hash-password`)")
    return None
