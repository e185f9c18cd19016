"""Console users: stdlib scrypt hashes, the users setting/file read with one clear error, the bind rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.console.auth import UsersError, hash_password, load_users, parse_users, refusal, verify_password

HASH = hash_password("correct horse battery")


def test_a_hash_verifies_its_password_only() -> None:
    assert HASH.startswith("scrypt$") and "correct" not in HASH
    assert verify_password("correct horse battery", HASH)
    assert not verify_password("correct horse batterY", HASH)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "scrypt$1$2$3$zz$zz")
    assert hash_password("same") != hash_password("same")  # salted


def test_users_from_the_setting_and_the_file(tmp_path: Path) -> None:
    file = tmp_path / "users"
    file.write_text(f"# the ops team\nbo operator {HASH}\ncy:admin:{HASH}\n")
    users = load_users(f"ann:viewer:{HASH}", str(file))
    assert {n: u.role for n, u in users.items()} == {"ann": "viewer", "bo": "operator", "cy": "admin"}
    assert users["cy"].may("operator") and users["bo"].may("operator") and not users["bo"].may("admin")
    assert not users["ann"].may("operator")


@pytest.mark.parametrize(("text", "says"), [
    ("ann:boss:" + HASH, "role 'boss', not one of viewer, operator, admin"),
    ("ann:viewer:hunter2", "must be a hash from `bcsync console --hash-password`"),
    ("ann:viewer", "expected 'name role hash'"),
])
def test_a_bad_user_line_is_one_clear_error(text: str, says: str) -> None:
    with pytest.raises(UsersError, match="BCSYNC_CONSOLE_USERS line 1") as raised:
        parse_users(text, "BCSYNC_CONSOLE_USERS")
    assert says in str(raised.value) and "hunter2" not in str(raised.value)


def test_an_unreadable_users_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UsersError, match="BCSYNC_CONSOLE_USERS_FILE=.*cannot read it"):
        load_users("", str(tmp_path / "missing"))


def test_loopback_without_users_is_allowed_any_other_address_is_not() -> None:
    users = parse_users(f"ann:viewer:{HASH}", "x")
    assert refusal("127.0.0.1", {}) is None and refusal("localhost", {}) is None and refusal("::1", {}) is None
    refused = refusal("0.0.0.0", {})
    assert refused is not None and "without users" in refused and "0.0.0.0" in refused
    assert refusal("0.0.0.0", users) is None
