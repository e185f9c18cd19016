"""Acknowledge and resolve with who, when and a comment (the console), on real Redis."""

from __future__ import annotations

import redis

from config.mapping import ExceptionOwners
from state.exceptions import ExceptionRegister


def _register(client: redis.Redis) -> ExceptionRegister:
    return ExceptionRegister(client, "notes", ExceptionOwners())


def test_acknowledge_then_resolve_keeps_who_when_and_why(redis_client: redis.Redis) -> None:
    register = _register(redis_client)
    register.record("customer_mismatch", "customer:C1", "409 duplicate_profile")
    assert register.acknowledge("customer_mismatch", "customer:C1", by="ann", comment="merging today")
    assert register.resolve("customer_mismatch", "customer:C1", by="bo", comment="merged")
    rec = register.get("customer_mismatch", "customer:C1")
    assert rec is not None and rec.status == "resolved"
    assert [(n["by"], n["action"], n["comment"]) for n in rec.notes] == [
        ("ann", "acknowledged", "merging today"), ("bo", "resolved", "merged")]
    assert all(n["at"] > 0 for n in rec.notes)


def test_an_acknowledged_exception_seen_again_stays_acknowledged_a_resolved_one_reopens(
        redis_client: redis.Redis) -> None:
    register = _register(redis_client)
    register.record("invalid_record", "customer:C1", "no e-mail")
    register.acknowledge("invalid_record", "customer:C1", by="ann")
    rec = register.record("invalid_record", "customer:C1", "no e-mail")
    assert rec.status == "acknowledged" and rec.count == 2 and rec.notes[0]["by"] == "ann"
    register.resolve("invalid_record", "customer:C1", by="ann")
    assert register.record("invalid_record", "customer:C1", "no e-mail").status == "open"


def test_the_fleets_own_resolve_writes_no_note_and_an_unknown_exception_is_false(redis_client: redis.Redis) -> None:
    register = _register(redis_client)
    register.record("watermark_stale", "customer", "old")
    assert register.resolve("watermark_stale", "customer")
    rec = register.get("watermark_stale", "customer")
    assert rec is not None and rec.notes == []
    assert not register.acknowledge("watermark_stale", "nothing", by="ann")
