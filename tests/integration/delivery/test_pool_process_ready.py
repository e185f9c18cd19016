"""A pool process is ready before its first message (issue 18): its runtime and a Klaviyo client per lane are
built as it starts, and every client shares the process's one TLS context, built in the worker's main process
before it forks (a context per client loads the CA bundle: about 25 ms of CPU on the first event)."""

from __future__ import annotations

import pytest

from config.lanes import LANES
from connectors.klaviyo.client import tls_context
from delivery.runtime import before_the_pool_forks, ready_for_the_first_message, reset_runtime, runtime
from tests.support.fleet import configured_like, fleet_env

pytestmark = pytest.mark.integration


def test_a_pool_process_has_a_client_per_lane_sharing_one_tls_context_before_its_first_message(
    redis_url: str,
) -> None:
    with configured_like(fleet_env(redis_url, "http://127.0.0.1:9"), object()):
        reset_runtime()
        try:
            before_the_pool_forks()
            context = tls_context()
            ready_for_the_first_message()
            clients = runtime().clients
            assert sorted(clients) == sorted(LANES)
            assert all(client._http._transport._pool._ssl_context is context  # type: ignore[attr-defined]
                       for client in clients.values())
        finally:
            reset_runtime()
