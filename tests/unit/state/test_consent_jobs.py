"""The consent-job store on a real Redis: one job in flight per customer and channel."""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from state.consent_jobs import ConsentJobs

KEY = "consent:email:C1"
V1, V2, V3 = "2026-03-01T10:00:00Z#000001", "2026-03-01T10:05:00Z#000001", "2026-03-01T10:10:00Z#000001"


def op(action: str, version: str, key: str = KEY) -> tuple[str, str, str, dict[str, Any]]:
    return key, version, action, {"kind": action, "key": key, "version": version,
                                  "payload": {"channel": "email", "profile": {"email": "ann@example.com"}}}


def store(client: redis.Redis, claim_ttl: float = 60, sent_ttl: float = 600) -> ConsentJobs:
    return ConsentJobs(client, "t", claim_ttl=claim_ttl, sent_ttl=sent_ttl)


def test_a_key_with_a_pending_job_makes_another_version_wait_until_it_is_settled(redis_client: redis.Redis) -> None:
    jobs = store(redis_client)
    assert jobs.claim("A", [op("subscribe", V1)], now=100.0).ok == {KEY}
    waits = jobs.claim("B", [op("unsubscribe", V2)], now=101.0)
    assert waits.ok == set() and waits.waiting == {KEY: 100.0}, "claimed, not sent yet: it waits all the same"
    jobs.mark_sent([(KEY, V1)], now=102.0)
    assert jobs.claim("B", [op("unsubscribe", V2)], now=103.0).waiting == {KEY: 102.0}
    (pending,) = jobs.pending([KEY]).values()
    assert (pending.version, pending.state, pending.sent_at, pending.operation["kind"]) == (V1, "sent", 102.0,
                                                                                          "subscribe")
    assert jobs.settle(KEY, V1, "subscribe", seen=101.5, now=104.0)
    assert jobs.pending([KEY]) == {}
    assert jobs.claim("B", [op("unsubscribe", V2)], now=105.0).ok == {KEY}
    (pending,) = jobs.pending([KEY]).values()
    assert (pending.prior, pending.prior_seen) == ("subscribe", 101.5), "what the settled job left the profile in"


def test_the_same_version_claims_again_and_an_older_one_is_overtaken(redis_client: redis.Redis) -> None:
    jobs = store(redis_client)
    jobs.claim("A", [op("unsubscribe", V2)], now=100.0)
    assert jobs.claim("A2", [op("unsubscribe", V2)], now=110.0).ok == {KEY}, "a rescheduled or redelivered send"
    assert jobs.pending([KEY])[KEY].envelope == "A2"
    assert jobs.claim("B", [op("subscribe", V1)], now=111.0).overtaken == {KEY: V2}
    jobs.mark_sent([(KEY, V2)], now=112.0)
    assert jobs.claim("A3", [op("unsubscribe", V2)], now=113.0).ok == {KEY}
    assert jobs.pending([KEY])[KEY].sent_at == 112.0, "still the sent job"


def test_release_frees_only_an_unsent_claim_of_that_version_and_drop_any_of_it(redis_client: redis.Redis) -> None:
    jobs = store(redis_client)
    jobs.claim("A", [op("subscribe", V1)], now=100.0)
    assert jobs.release([(KEY, V2)]) == 0, "another version's claim stays"
    assert jobs.release([(KEY, V1)]) == 1
    jobs.claim("A", [op("subscribe", V1)], now=100.0)
    jobs.mark_sent([(KEY, V1)], now=101.0)
    assert jobs.release([(KEY, V1)]) == 0, "a sent job stays pending until it is seen applied"
    assert not jobs.settle(KEY, V2, "subscribe", None, now=102.0), "only the pending version settles"
    assert jobs.drop([(KEY, V1)]) == 1
    assert jobs.claim("B", [op("unsubscribe", V2)], now=103.0).ok == {KEY}
    assert jobs.pending([KEY])[KEY].prior is None, "a job given up leaves no memory: the profile's state is unknown"


def test_a_read_back_that_saw_another_state_is_kept_with_the_job(redis_client: redis.Redis) -> None:
    jobs = store(redis_client)
    jobs.claim("A", [op("unsubscribe", V1)], now=100.0)
    jobs.note_seen_other([(KEY, V1)])
    assert not jobs.pending([KEY])[KEY].seen_other, "only a sent job's read-back counts"
    jobs.mark_sent([(KEY, V1)], now=101.0)
    jobs.note_seen_other([(KEY, V1)])
    assert jobs.pending([KEY])[KEY].seen_other
    jobs.mark_sent([(KEY, V1)], now=102.0)  # sent again (a redelivery): what was seen before no longer counts
    assert not jobs.pending([KEY])[KEY].seen_other


def test_claims_and_sent_jobs_expire_so_a_lost_worker_or_check_blocks_nobody_for_good(
    redis_client: redis.Redis,
) -> None:
    jobs = store(redis_client, claim_ttl=0.2, sent_ttl=0.4)
    jobs.claim("A", [op("subscribe", V1), op("subscribe", V1, "consent:sms:C1")], now=time.time())
    jobs.mark_sent([("consent:sms:C1", V1)], now=time.time())
    time.sleep(0.25)
    claims = jobs.claim("B", [op("unsubscribe", V2), op("unsubscribe", V2, "consent:sms:C1")], now=time.time())
    assert claims.ok == {KEY} and set(claims.waiting) == {"consent:sms:C1"}
    time.sleep(0.2)
    assert jobs.claim("B", [op("unsubscribe", V2, "consent:sms:C1")], now=time.time()).ok == {"consent:sms:C1"}


def test_of_many_workers_claiming_one_key_at_once_exactly_one_may_send(redis_url: str) -> None:
    winners: list[str] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        jobs = store(client)
        start.wait()
        if jobs.claim(f"E{n}", [op("subscribe" if n % 2 else "unsubscribe", V1 if n % 2 else V3)],
                      now=time.time()).ok:
            winners.append(f"E{n}")
        client.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the same version may claim again (a redelivery of its own send), so winners share one version
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    versions = {store(client).pending([KEY])[KEY].version}
    client.close()
    assert winners and len(versions) == 1
    assert all((int(w[1:]) % 2 == 1) == (versions == {V1}) for w in winners)
