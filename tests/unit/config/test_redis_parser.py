"""Redis replies are parsed in C (hiredis): a pipeline of a page of order documents, a bulk request's ledger
read, every message kombu takes. redis-py falls back to its Python parser without a word when hiredis is
missing, so this is the only thing that notices a dependency lost from an install."""

from __future__ import annotations

from kombu.transport import redis as kombu_redis

from config.redis import redis_client


def test_the_fleets_clients_and_kombus_parse_replies_with_hiredis() -> None:
    fleet = redis_client("redis://127.0.0.1:1/0").connection_pool.make_connection()  # made, never connected
    broker = kombu_redis.redis.Redis.from_url("redis://127.0.0.1:1/0").connection_pool.make_connection()
    assert type(fleet._parser).__name__ == "_HiredisParser"
    assert type(broker._parser).__name__ == "_HiredisParser"
