"""The heartbeat's store against kombu's own Redis transport: the keys it refreshes are the ones kombu's
restore sweep reads (global key prefix included), so a vouched-for message is never restored and an
abandoned one is; and what `bcsync status` reads from them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.transport.redis import Channel

from config.redis import broker_key_prefix
from state.keys import RedisKeys
from state.unacked import UnackedMessages

PREFIX = "hb"
VISIBILITY = 1


@pytest.fixture
def broker(redis_url: str) -> Iterator[Connection]:
    options = {"global_keyprefix": broker_key_prefix(PREFIX), "visibility_timeout": VISIBILITY}
    with Connection(redis_url, transport_options=options) as conn:
        yield conn


def take(conn: Connection, lane: str) -> str:
    """Publish one message on `lane` and take it without acknowledging it, as a worker does."""
    queue = Queue(lane, Exchange("bcsync", type="direct"), routing_key=lane)
    channel = conn.default_channel
    conn.Producer(channel).publish({"n": 1}, exchange=queue.exchange, routing_key=lane, declare=[queue],
                                   serializer="json")
    message = queue(channel).get(no_ack=False)
    assert message is not None
    return str(message.delivery_tag)


def restore_sweep(conn: Connection) -> None:
    conn.default_channel.qos.restore_visible(num=None, interval=1)


def test_key_names_are_kombus() -> None:
    keys = RedisKeys(PREFIX)
    assert keys.broker_unacked == broker_key_prefix(PREFIX) + Channel.unacked_key
    assert keys.broker_unacked_index == broker_key_prefix(PREFIX) + Channel.unacked_index_key


def test_a_vouched_for_message_outlives_the_visibility_timeout_and_an_abandoned_one_returns(
    broker: Connection, redis_client: redis.Redis
) -> None:
    unacked = UnackedMessages(redis_client, PREFIX)
    held, abandoned = take(broker, "fast"), take(broker, "batch")
    taken_at = time.time()
    assert unacked.refresh([held], [], taken_at) == 1
    deadline = time.monotonic() + 2.5 * VISIBILITY
    while time.monotonic() < deadline:  # the heartbeat of the worker holding `held`
        unacked.refresh([], [held], time.time())
        restore_sweep(broker)
        time.sleep(0.2)
    lanes = unacked.by_lane(("fast", "default", "batch"), time.time(), orphaned_after=0.6)
    assert redis_client.llen(RedisKeys(PREFIX).queue("fast")) == 0
    assert redis_client.llen(RedisKeys(PREFIX).queue("batch")) == 1  # restored by the sweep
    assert redis_client.hkeys(RedisKeys(PREFIX).broker_unacked) == [held]
    assert redis_client.zscore(RedisKeys(PREFIX).broker_unacked_index, abandoned) is None
    # the age counts from the take (kept in the taken hash), not from the last heartbeat
    assert lanes["fast"].count == 1 and lanes["fast"].orphaned == 0
    assert lanes["fast"].oldest_seconds is not None and lanes["fast"].oldest_seconds >= 2.4 * VISIBILITY
    assert lanes["batch"].count == 0 and lanes["default"].count == 0
    assert redis_client.hkeys(RedisKeys(PREFIX).unacked_taken) == [held]


def test_status_sees_an_orphaned_message_and_the_heartbeat_forgets_what_is_gone(
    broker: Connection, redis_client: redis.Redis
) -> None:
    unacked = UnackedMessages(redis_client, PREFIX)
    tag = take(broker, "fast")
    unacked.refresh([tag], [], time.time())
    time.sleep(0.5)
    lanes = unacked.by_lane(("fast",), time.time(), orphaned_after=0.3)
    assert lanes["fast"].count == 1 and lanes["fast"].orphaned == 1
    assert lanes["fast"].oldest_seconds is not None and lanes["fast"].oldest_seconds >= 0.5
    broker.default_channel.basic_ack(tag)
    # an acknowledged tag is not written back into kombu's index, and its take time is dropped
    assert unacked.refresh([], [tag], time.time()) == 0
    assert redis_client.zcard(RedisKeys(PREFIX).broker_unacked_index) == 0
    assert redis_client.hlen(RedisKeys(PREFIX).unacked_taken) == 0
    assert unacked.by_lane(("fast",), time.time(), orphaned_after=0.3)["fast"].count == 0
