"""Customers waiting for the daily batch: their latest raw record, one Redis hash for the whole fleet.

A non-immediate field change (division, groups, address, ...) is parked here; `run_daily_batch` sends one
full profile per parked customer on the batch lane and removes each entry only if it was not replaced
meanwhile (compare-and-delete), so an edit that lands during the batch waits for the next one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import redis

from state.keys import RedisKeys

_DELETE_IF_SAME = "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then " \
                  "return redis.call('HDEL', KEYS[1], ARGV[1]) else return 0 end"


class DailyBatchStore:
    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).daily_batch
        self._delete_if_same = client.register_script(_DELETE_IF_SAME)

    def park(self, code: str, record: dict[str, Any], version: str) -> None:
        self.client.hset(self.key, code, json.dumps({"record": record, "version": version}))

    def entries(self, batch: int = 1000) -> Iterator[tuple[str, str]]:
        """(code, raw entry) pairs, scanned in batches (bounded memory)."""
        for code, raw in self.client.hscan_iter(self.key, count=batch):
            yield str(code), str(raw)

    @staticmethod
    def decode(raw: str) -> tuple[dict[str, Any], str]:
        entry = json.loads(raw)
        return entry["record"], entry["version"]

    def remove_if_same(self, code: str, raw: str) -> bool:
        return bool(self._delete_if_same(keys=[self.key], args=[code, raw]))

    def discard(self, code: str) -> None:
        self.client.hdel(self.key, code)

    def __len__(self) -> int:
        return int(self.client.hlen(self.key))
