"""Per-message run records (state/task_runs.py), on a real private Redis."""

from __future__ import annotations

from state.keys import RedisKeys
from state.task_runs import RECORD_TTL_SECONDS, TaskRuns


def test_starts_count_up_keep_the_first_start_and_name_the_task_and_lane(redis_client):
    runs = TaskRuns(redis_client, "t")
    assert runs.started("m1", "bcsync.deliver", "fast", now=100.5) == 1
    assert runs.started("m1", "bcsync.deliver.event", None, now=200.0) == 2  # no lane given: the first stays
    run = runs.get("m1")
    assert run is not None
    assert (run.starts, run.failures, run.task, run.lane, run.first_start) == (2, 0, "bcsync.deliver.event",
                                                                               "fast", 100.5)
    assert 0 < redis_client.ttl(RedisKeys("t").task_run("m1")) <= RECORD_TTL_SECONDS


def test_an_end_resets_the_starts_and_forgetting_removes_the_record(redis_client):
    runs = TaskRuns(redis_client, "t")
    runs.started("m2", "bcsync.deliver", "batch")
    runs.ended("m2")
    assert runs.started("m2", "bcsync.deliver", "batch") == 1
    runs.forget("m2")
    assert runs.get("m2") is None
