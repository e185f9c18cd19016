"""A bug in the order handler, switched on and off from outside: the handler-bug drill of `bench/drills.py`.

A worker that imports this module (`--include tests.support.handler_bug`) runs the order flow through a wrapper
that raises while the Redis key `<prefix>:test:handler-bug` exists - as a deployed bug would, until the fix is
deployed (the key deleted). The fleet's own task base class must then retry, dead-letter, and let
`bcsync dlq requeue` deliver the work once the bug is gone. Used by the drills only.
"""

from __future__ import annotations

from collections.abc import Callable

import tasks.changes
from state.factory import stores
from sync.changes import ChangeEvent

ORDER_RESOURCES = ("order", "pick", "invoice", "creditmemo")


def bug_key() -> str:
    return f"{stores().settings.key_prefix}:test:handler-bug"


def _buggy(flow: Callable[[ChangeEvent], None]) -> Callable[[ChangeEvent], None]:
    def handle(event: ChangeEvent) -> None:
        if stores().redis.exists(bug_key()):
            raise ZeroDivisionError(f"injected handler bug ({event.record_ref})")
        flow(event)

    return handle


for _resource in ORDER_RESOURCES:
    tasks.changes.FLOWS[_resource] = _buggy(tasks.changes.FLOWS[_resource])
