"""kombu's Redis transport, with a take that cannot lose a message (celery/celery#7950, celery/kombu#305).

kombu takes a message with ``BRPOP`` and only then, in a second command, writes it to its unacknowledged hash.
A worker killed between the two (SIGKILL, OOM killer, a host that dies) has removed the message from its lane
and recorded it nowhere: it is never redelivered. The fleet's drills saw it (a customer change that never
reached Klaviyo, 2 runs in 10 of the quick SIGKILL drill).

Here a consumer that watches a single list (one lane, no priority levels: every worker of the fleet) takes with
``BLMOVE lane -> <lane>.taking`` instead, so the message is in Redis at every moment, and the write to the
unacknowledged hash removes it from the taking list in the same transaction. A message left in a taking list
was taken by a consumer that died before recording it; each worker's periodic redelivery sweep (the one that
restores messages past the visibility timeout) puts such a message back on its lane, at the end consumers take
from next, once it has been seen there, unchanged, in two sweeps at least a visibility timeout apart. The take -> record
window of a live consumer is microseconds, so only a dead consumer's message is ever restored - and if a
frozen live one's were, its task would run twice, which every task already tolerates (as it does a
visibility-timeout redelivery).

A consumer of several lists (several lanes in one worker, or priority levels) keeps kombu's ``BRPOP``: BLMOVE
reads one list only. The fleet never runs such a worker (`bcsync worker --lane L`, ``priority_steps=[0]``).

The transport stores each message as JSON with orjson (`config.message_json`: kombu's format, a tenth of the
cost): kombu's Redis transport calls its module's `dumps` and `loads` from a dozen places (publish, take,
restore), so those two names are pointed at the faster codec when this transport is loaded.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual

from config import message_json
from config.message_json import dumps, loads
from config.redis import COMMAND_PACKER, taking_key

log = logging.getLogger(__name__)

kombu_redis.dumps = message_json.dumps  # type: ignore[assignment]  # the same call, for what kombu passes
kombu_redis.loads = message_json.loads  # type: ignore[assignment]

_SEEN_SUFFIX = "\x06\x16taking-seen"

# KEYS: taking list, seen hash (item sha -> first time seen), lane list. ARGV: now, min_age.
# A message is restored when the same message has been in the taking list for min_age, by two sweeps' sight.
_RESTORE_STUCK = """
local now, min_age = tonumber(ARGV[1]), tonumber(ARGV[2])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local present, restored = {}, 0
for _, item in ipairs(items) do
  local sha = redis.sha1hex(item)
  present[sha] = true
  local first = redis.call('HGET', KEYS[2], sha)
  if not first then
    redis.call('HSET', KEYS[2], sha, ARGV[1])
  elseif now - tonumber(first) >= min_age then
    if redis.call('LREM', KEYS[1], 1, item) == 1 then
      redis.call('RPUSH', KEYS[3], item)
      restored = restored + 1
    end
    redis.call('HDEL', KEYS[2], sha)
  end
end
for _, sha in ipairs(redis.call('HKEYS', KEYS[2])) do
  if not present[sha] then redis.call('HDEL', KEYS[2], sha) end
end
return restored
"""


def restore_stuck_takes(client: redis.Redis, lane_key: str, now: float, min_age: float) -> int:
    """Put back on the lane every message that has sat in its taking list for `min_age` seconds, as seen by
    this and an earlier call; returns how many. `client` must not add a key prefix (keys are given whole)."""
    script = client.register_script(_RESTORE_STUCK)
    return int(script(keys=[taking_key(lane_key), lane_key + _SEEN_SUFFIX, lane_key], args=[repr(now), min_age]))


# One command where kombu's MULTI sends five (record) and four (ack): the same writes, as atomic, for a tenth of
# the commands the worker's main process packs and Redis reads per message (issue 18).
# KEYS: unacked index, unacked hash, taking list. ARGV: tag, now, the stored message, the item taken.
_RECORD_TAKEN = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('LREM', KEYS[3], 1, ARGV[4])
"""
# KEYS: unacked index, unacked hash. ARGV: tag.
_FORGET_ACKED = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
"""


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: str) -> None:
        taken = self.channel.connection.taken_items.pop(delivery_tag, None)
        if taken is None:
            super().append(message, delivery_tag)
            return
        lane_key, item = taken
        delivery = message.delivery_info
        channel = self.channel
        # one script: the message moves from the taking list to the unacknowledged hash, never neither
        channel.run_script(_RECORD_TAKEN, [channel._prefixed(self.unacked_index_key),
                                           channel._prefixed(self.unacked_key), taking_key(lane_key)],
                           [delivery_tag, time.time(),
                            dumps([message._raw, delivery["exchange"], delivery["routing_key"]]), item])
        virtual.QoS.append(self, message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        channel = self.channel
        channel.run_script(_FORGET_ACKED, [channel._prefixed(self.unacked_index_key),
                                           channel._prefixed(self.unacked_key)], [delivery_tag])
        virtual.QoS.ack(self, delivery_tag)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        super().restore_visible(start=start, num=num, interval=interval)
        try:
            self.channel.restore_stuck_takes(min_age=self.visibility_timeout)
        except self.channel.connection_errors:
            raise  # kombu's caller skips this cycle and retries on the next
        except Exception:  # a sweep that fails must not stop the worker: the next one retries
            log.exception("restoring messages left in a taking list failed")


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # before kombu's __init__, which may already ask for a client
        self._sync_client: tuple[Any, Any] | None = None  # (the pool it was built on, the client)
        self._plain: tuple[Any, redis.Redis, dict[str, Any]] | None = None  # (the pool, its client, its scripts)
        super().__init__(*args, **kwargs)
        self._taking_from: str | None = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        """kombu builds a new Redis client for every publish and every ack (`conn_or_acquire`), copying redis-py's
        response callbacks each time: a client built once per pool is reused instead. It holds no connection
        of its own (each command borrows one from the pool), so sharing it changes nothing but the cost; a new
        pool (kombu drops its pools on a connection error) gets a new client."""
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        cached = self._sync_client
        if cached is None or cached[0] is not pool:
            cached = (pool, super()._create_client(asynchronous=False))
            self._sync_client = cached
        return cached[1]

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        """kombu's connection parameters, with the fleet's command packer (config/redis.py: the same bytes, less
        CPU in the worker's main process for every take, record, ack and publish)."""
        params: dict[str, Any] = super()._connparams(asynchronous)
        params["command_packer"] = COMMAND_PACKER
        return params

    def _plain_client(self) -> tuple[redis.Redis, dict[str, Any]]:
        """A client of the channel's pool that adds no key prefix (keys are given whole), and its registered
        scripts by source: built once per pool as `_create_client` builds its own, with the pool's credential
        provider as kombu passes it."""
        pool = self.pool
        if self._plain is None or self._plain[0] is not pool:
            credentials = pool.connection_kwargs.get("credential_provider")
            client = redis.Redis(connection_pool=pool, **({"credential_provider": credentials} if credentials else {}))
            self._plain = (pool, client, {})
        return self._plain[1], self._plain[2]

    def run_script(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run `source` (EVALSHA, loading it once) on `_plain_client`: `keys` are whole."""
        client, scripts = self._plain_client()
        script = scripts.get(source)
        if script is None:
            script = scripts[source] = client.register_script(source)
        return script(keys=keys, args=args)

    def _prefixed(self, key: str) -> str:
        return f"{self.global_keyprefix or ''}{key}"

    def _brpop_start(self, timeout: float | None = None) -> None:
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        keys = [self._q_for_pri(queue, pri) for pri in self.priority_steps for queue in queues]
        if len(set(keys)) != 1:
            self._taking_from = None
            super()._brpop_start(timeout)
            return
        lane_key = self._prefixed(keys[0])
        self._taking_from = keys[0]
        self._in_poll = self.client.connection
        self._brpop_sent_at = kombu_redis.monotonic()  # type: ignore[assignment]  # kombu declares it None
        self.client.connection.send_command("BLMOVE", lane_key, taking_key(lane_key), "RIGHT", "LEFT",
                                            timeout or 0)

    def _brpop_read(self, **options: Any) -> bool:
        queue = self._taking_from
        if queue is None:
            return bool(super()._brpop_read(**options))
        try:
            try:
                item = self.client.parse_response(self.client.connection, "BLMOVE", **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            if not item:
                raise kombu_redis.Empty()
            self._queue_cycle.rotate(queue)
            payload = loads(kombu_redis.bytes_to_str(item))
            tag = payload.get("properties", {}).get("delivery_tag")
            if tag:
                self.connection.taken_items[tag] = (self._prefixed(queue), item)
            self.on_taken(queue, item)
            self.connection._deliver(payload, queue)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]  # as kombu does
            self._flush_brpop_reauth()

    def on_taken(self, queue: str, item: bytes) -> None:
        """The message is in the taking list and nowhere else yet (a test kills the process here)."""

    def restore_stuck_takes(self, min_age: float) -> int:
        plain, _ = self._plain_client()
        return sum(restore_stuck_takes(plain, self._prefixed(self._q_for_pri(queue, 0)), time.time(), min_age)
                   for queue in list(self.active_queues))


class Transport(kombu_redis.Transport):
    Channel = Channel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # delivery tag -> (lane key, the exact bytes taken), from the take to the unacknowledged write; on the
        # transport, not the channel: kombu may record a message through another channel's QoS
        self.taken_items: dict[str, tuple[str, bytes]] = {}
