"""A worker killed between taking a message and recording it loses nothing (state/broker_transport.py).

kombu's Redis transport takes with BRPOP and records the message as unacknowledged in a second command: a
consumer killed in between (celery/celery#7950) leaves the message nowhere. These tests kill a real consumer
process exactly there, with SIGKILL, and then find the message again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue

from config.redis import taking_key
from state.broker_transport import Transport, restore_stuck_takes
from tests.support.fleet import ROOT

PREFIX = "takes-test:broker:"
LANE = "fast"
LANE_KEY = PREFIX + LANE
EXCHANGE = Exchange("bcsync", type="direct")
OPTIONS = {"global_keyprefix": PREFIX, "priority_steps": [0], "visibility_timeout": 1}

# A consumer on the fleet's transport that dies by SIGKILL right after its take, before recording the message.
_DYING_CONSUMER = textwrap.dedent("""
    import os, signal, sys
    from kombu import Connection, Consumer, Exchange, Queue
    from state.broker_transport import Channel, Transport

    class DiesAfterTake(Channel):
        def on_taken(self, queue, item):
            os.kill(os.getpid(), signal.SIGKILL)

    class DyingTransport(Transport):
        Channel = DiesAfterTake

    url, prefix = sys.argv[1], sys.argv[2]
    options = {"global_keyprefix": prefix, "priority_steps": [0]}
    with Connection(url, transport=DyingTransport, transport_options=options) as conn:
        queue = Queue("fast", Exchange("bcsync", type="direct"), routing_key="fast")
        with Consumer(conn, [queue], callbacks=[lambda body, message: None]):
            conn.drain_events(timeout=20)
    sys.exit(3)  # never reached: the take kills the process
""")


@pytest.fixture
def connection(redis_url: str) -> Iterator[Connection]:
    with Connection(redis_url, transport=Transport, transport_options=OPTIONS) as conn:
        yield conn


def publish(conn: Connection, body: dict[str, str]) -> None:
    queue = Queue(LANE, EXCHANGE, routing_key=LANE)
    Producer(conn).publish(body, exchange=EXCHANGE, routing_key=LANE, declare=[queue], serializer="json")


def consume_one(conn: Connection) -> tuple[dict[str, str], object]:
    received: list[tuple[dict[str, str], object]] = []
    queue = Queue(LANE, EXCHANGE, routing_key=LANE)
    with Consumer(conn, [queue], callbacks=[lambda body, message: received.append((body, message))]):
        conn.drain_events(timeout=5)
    assert len(received) == 1
    return received[0]


def test_a_consumer_killed_between_take_and_record_leaves_the_message_where_it_is_found_again(
        redis_url: str, redis_client: redis.Redis, connection: Connection) -> None:
    publish(connection, {"customer": "C-1"})
    dying = subprocess.run([sys.executable, "-c", _DYING_CONSUMER, redis_url, PREFIX], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert dying.returncode == -9, dying.stderr  # killed at the take, as planned

    # kombu's BRPOP would have left it nowhere: not on the lane, not unacknowledged
    assert redis_client.llen(LANE_KEY) == 0
    assert redis_client.hlen(PREFIX + "unacked") == 0
    assert redis_client.llen(taking_key(LANE_KEY)) == 1

    # the workers' redelivery sweep: the first sight starts the clock, a later one past the visibility timeout
    qos = connection.default_channel.qos
    connection.default_channel.basic_consume(LANE, no_ack=False, callback=lambda m: None, consumer_tag="t")
    qos.restore_visible(num=10, interval=1)
    assert redis_client.llen(taking_key(LANE_KEY)) == 1  # not before it has been seen stuck for a while
    time.sleep(1.2)
    qos.restore_visible(num=10, interval=1)
    assert redis_client.llen(taking_key(LANE_KEY)) == 0
    assert redis_client.llen(LANE_KEY) == 1
    connection.default_channel.basic_cancel("t")

    body, message = consume_one(connection)
    assert body == {"customer": "C-1"}
    assert redis_client.hlen(PREFIX + "unacked") == 1 and redis_client.llen(taking_key(LANE_KEY)) == 0
    tag = message.delivery_tag  # type: ignore[attr-defined]
    # indexed too: the visibility sweep finds a dead worker's messages by this score
    assert redis_client.zscore(PREFIX + "unacked_index", tag) is not None
    message.ack()  # type: ignore[attr-defined]
    assert redis_client.hlen(PREFIX + "unacked") == 0 and redis_client.llen(LANE_KEY) == 0
    assert redis_client.zscore(PREFIX + "unacked_index", tag) is None


def test_a_live_consumer_records_what_it_takes_and_leaves_no_trace_in_the_taking_list(
        redis_client: redis.Redis, connection: Connection) -> None:
    for n in range(3):
        publish(connection, {"customer": f"C-{n}"})
    bodies = []
    for _ in range(3):
        body, message = consume_one(connection)
        bodies.append(body["customer"])
        stored = json.loads(redis_client.hget(PREFIX + "unacked", message.delivery_tag))  # type: ignore[attr-defined]
        assert stored[0]["properties"]["delivery_tag"] == message.delivery_tag  # type: ignore[attr-defined]
        assert redis_client.llen(taking_key(LANE_KEY)) == 0
        message.ack()  # type: ignore[attr-defined]
    assert bodies == ["C-0", "C-1", "C-2"]  # first in, first out, as with kombu's BRPOP
    assert redis_client.hlen(PREFIX + "unacked") == 0


def test_publishing_and_acknowledging_reuse_one_redis_client_and_still_record_and_remove(
        redis_client: redis.Redis, connection: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """kombu builds a Redis client for every publish and every ack (issue 18): the fleet's channel builds one."""
    publish(connection, {"customer": "C-warm"})  # the channel and its pools exist
    _, message = consume_one(connection)
    message.ack()  # type: ignore[attr-defined]
    built: list[object] = []
    original = redis.Redis.__init__

    def counting_init(self: redis.Redis, *args: object, **kwargs: object) -> None:
        built.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(redis.Redis, "__init__", counting_init)
    for n in range(5):
        publish(connection, {"customer": f"C-{n}"})
    for n in range(5):
        body, message = consume_one(connection)
        assert body == {"customer": f"C-{n}"}
        assert redis_client.hexists(PREFIX + "unacked", message.delivery_tag)  # type: ignore[attr-defined]
        message.ack()  # type: ignore[attr-defined]
    monkeypatch.undo()
    assert built == []  # kombu's own channel built 25 here (publishes, takes, records, acks)
    assert redis_client.hlen(PREFIX + "unacked") == 0 and redis_client.llen(LANE_KEY) == 0


def test_the_sweep_restores_only_what_stayed_in_the_taking_list_for_the_whole_age(redis_client: redis.Redis) -> None:
    plain = redis_client
    taking = taking_key(LANE_KEY)
    plain.lpush(taking, "stuck", "passing")
    assert restore_stuck_takes(plain, LANE_KEY, now=100.0, min_age=30) == 0  # first sight
    plain.lrem(taking, 1, "passing")  # its consumer recorded it meanwhile
    assert restore_stuck_takes(plain, LANE_KEY, now=120.0, min_age=30) == 0  # not yet 30 s
    plain.lpush(taking, "passing")  # the same bytes again later (a redelivery): a new first sight
    assert restore_stuck_takes(plain, LANE_KEY, now=130.0, min_age=30) == 1
    assert plain.lrange(LANE_KEY, 0, -1) == ["stuck"]
    assert plain.lrange(taking, 0, -1) == ["passing"]
    assert restore_stuck_takes(plain, LANE_KEY, now=140.0, min_age=30) == 0
    assert restore_stuck_takes(plain, LANE_KEY, now=160.0, min_age=30) == 1
    assert plain.lrange(LANE_KEY, 0, -1) == ["stuck", "passing"]
    assert plain.llen(taking) == 0
    assert plain.hlen(LANE_KEY + "\x06\x16taking-seen") == 0  # nothing left behind
