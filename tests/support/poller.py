"""Helpers shared by the poller tests and the poller subprocess they start."""

from __future__ import annotations

import json
from typing import Any

import redis

from config.mapping import Mapping
from config.settings import Settings
from connectors.bluecherry.client import BlueCherryClient
from state.exceptions import ExceptionRegister
from state.fingerprints import FingerprintStore
from sync.changes import ChangeEvent
from sync.fingerprints import StoredFingerprint
from workers.poller import Poller

PREFIX = "bcsync-test"
EMITTED = f"{PREFIX}:emitted"
KEY = "poller-key"


def settings_for(redis_url: str, lock_ttl: int = 3) -> Settings:
    return Settings(
        redis_url=redis_url, key_prefix=PREFIX, poller_lock_ttl_seconds=lock_ttl, poll_overlap_seconds=120,
        poll_start="2000-01-01 00:00:00",
    )


class ListEmit:
    """Emit into a Redis list. The list push and the poller's fingerprint write go in one MULTI, so a kill
    between "emitted" and "remembered" (which in production re-emits, harmlessly) cannot blur the count."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.fingerprints = FingerprintStore(client, PREFIX)

    def __call__(self, events: list[ChangeEvent]) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(EMITTED, *[json.dumps({"key": e.record.get("customer") or e.key, "kind": e.kind,
                                          "fields": e.changed_fields, "lane": e.lane}) for e in events])
        by_resource: dict[str, list[tuple[str, StoredFingerprint]]] = {}
        for e in events:
            stored = StoredFingerprint.decode(e.state)
            if stored is not None:
                by_resource.setdefault(e.resource, []).append((e.key, stored))
        for resource, entries in by_resource.items():
            self.fingerprints.remember(resource, entries, pipe)
        pipe.execute()


def emitted(client: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(x) for x in client.lrange(EMITTED, 0, -1)]


def make_poller(redis_url: str, bc_url: str, lock_ttl: int = 3, **kwargs: Any) -> Poller:
    mapping = Mapping()
    settings = settings_for(redis_url, lock_ttl)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    bc = BlueCherryClient(bc_url, KEY, timeout=10, max_attempts=6, backoff_base_seconds=0.05,
                          backoff_max_seconds=1.0, mapping=mapping)
    register = ExceptionRegister(client, PREFIX, mapping.owners)
    return Poller(bc, client, ListEmit(client), register, mapping=mapping, settings=settings,
                  resources=("customer",), **kwargs)
