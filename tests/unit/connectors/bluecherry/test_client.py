from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from config.mapping import Mapping, ResourceMapping
from connectors.bluecherry.client import BlueCherryClient
from connectors.bluecherry.errors import (
    BlueCherryAuthError,
    BlueCherryResponseError,
    BlueCherryRetryableError,
    error_message,
)
from sandbox.server import ServerThread, free_port
from tests.support.paths import REPO_ROOT
from tests.unit.connectors.bluecherry.conftest import KEY, Script, sandbox_post

MAPPING = Mapping()
CUSTOMER = MAPPING.resources.customer


def client_for(server: ServerThread, key: str = KEY, attempts: int = 4) -> BlueCherryClient:
    return BlueCherryClient(server.url, key, timeout=5, max_attempts=attempts, backoff_base_seconds=0.01,
                            backoff_max_seconds=0.05, mapping=MAPPING)


def test_pages_cover_every_record_once_and_stop_at_the_first_short_page(bc_sandbox: ServerThread) -> None:
    with client_for(bc_sandbox) as client:
        pages = list(client.iter_pages(CUSTOMER, None, page_size=200))
    sizes = [len(p) for p in pages]
    assert sizes[:-1] == [200] * (len(pages) - 1) and sizes[-1] < 200
    keys = [r[MAPPING.fields.customer.code] for p in pages for r in p]
    assert len(keys) == len(set(keys)) >= 450
    assert "custaddress" in pages[0][0]  # _include=all brings the children


def test_filter_is_ge_on_last_mod(bc_sandbox: ServerThread) -> None:
    sandbox_post(bc_sandbox, "/_sandbox/clock", {"now": "2026-03-02 11:00:00"})
    sandbox_post(bc_sandbox, "/_sandbox/apply", [{"op": "create_customer", "customer": "NEWC1"}])
    with client_for(bc_sandbox) as client:
        at = [r for p in client.iter_pages(CUSTOMER, "2026-03-02 11:00:00") for r in p]
        after = [r for p in client.iter_pages(CUSTOMER, "2026-03-02 11:00:01") for r in p]
        without_children = next(client.iter_pages(CUSTOMER, "2026-03-02 11:00:00", include_children=False))
    assert [r["customer"] for r in at] == ["NEWC1"]  # ge: the boundary second is included
    assert after == []
    assert "custaddress" not in without_children[0]


def test_get_by_pkey_and_missing(bc_sandbox: ServerThread) -> None:
    with client_for(bc_sandbox) as client:
        first = next(client.iter_pages(CUSTOMER, None, page_size=1))[0]
        assert client.get(CUSTOMER, first["pkey"]) == first
        assert client.get(CUSTOMER, 99_999_999) is None


def test_location_lookup_is_flat(bc_sandbox: ServerThread) -> None:
    with client_for(bc_sandbox) as client:
        locations = client.locations()
    assert locations and all(MAPPING.fields.location.code in loc for loc in locations)


def test_wrong_key_is_a_clear_auth_error_without_retries(bc_sandbox: ServerThread) -> None:
    with client_for(bc_sandbox, key="wrong") as client, pytest.raises(BlueCherryAuthError) as info:
        next(client.iter_pages(CUSTOMER, None))
    assert info.value.status == 401 and "invalid subscription key" in str(info.value)


def test_retries_429_and_5xx_then_succeeds(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [
        (429, {"message": "slow down"}, {"Retry-After": "0"}),
        (503, {"errors": [{"message": "busy"}]}, {}),
        (200, {"data": {"header": [{"pkey": 1, "last_mod": "2026-01-01 00:00:00"}]}}, {}),
    ]
    with client_for(server) as client:
        pages = list(client.iter_pages(CUSTOMER, "2026-01-01 00:00:00", page_size=5))
    assert pages == [[{"pkey": 1, "last_mod": "2026-01-01 00:00:00"}]]
    assert len(script.requests) == 3
    params = script.requests[-1].query_params
    assert params["$filter"] == "last_mod ge '2026-01-01 00:00:00'"
    assert params["_pgno"] == "1" and params["_pgsize"] == "5" and params["_include"] == "all"
    assert script.requests[-1].headers["Ocp-Apim-Subscription-Key"] == KEY


def test_retry_after_is_honoured(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [(429, {"message": "throttled"}, {"Retry-After": "1"}), (200, {"data": []}, {})]
    client = BlueCherryClient(server.url, KEY, max_attempts=3, backoff_base_seconds=0.001,
                              backoff_max_seconds=5, mapping=MAPPING)
    started = time.monotonic()
    list(client.iter_pages(CUSTOMER, None))
    assert time.monotonic() - started >= 1.0  # waited for Retry-After, not the 1 ms backoff


def test_gives_up_after_max_attempts(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [(500, {"message": [{"message": "db down"}]}, {})] * 3
    with client_for(server, attempts=3) as client, pytest.raises(BlueCherryRetryableError) as info:
        list(client.iter_pages(CUSTOMER, None))
    assert len(script.requests) == 3 and info.value.status == 500 and "db down" in str(info.value)


def test_other_4xx_is_not_retried(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [(400, {"errors": [{"errorMessage": "bad $filter"}]}, {})]
    with client_for(server) as client, pytest.raises(BlueCherryResponseError, match="bad \\$filter"):
        list(client.iter_pages(CUSTOMER, None))
    assert len(script.requests) == 1


def test_connection_errors_are_retried_then_raised() -> None:
    client = BlueCherryClient(f"http://127.0.0.1:{free_port()}", KEY, timeout=1, max_attempts=2,
                              backoff_base_seconds=0.01, backoff_max_seconds=0.02, mapping=MAPPING)
    with pytest.raises(BlueCherryRetryableError, match="connection failed"):
        list(client.iter_pages(CUSTOMER, None))


def test_resource_path_comes_from_the_mapping(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    custom = ResourceMapping(path="CustomerMaster", last_mod="chg_date", include_children=False)
    with client_for(server) as client:
        list(client.iter_pages(custom, "2026-01-01 00:00:00"))
    request = script.requests[0]
    assert request.url.path == "/api/CustomerMaster"
    assert request.query_params["$filter"] == "chg_date ge '2026-01-01 00:00:00'"
    assert "_include" not in request.query_params


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"errors": [{"errorMessage": "A"}]}, "A"),
        ({"errors": [{"message": "B"}]}, "B"),
        ({"message": [{"message": "C"}]}, "C"),
        ({"message": "D"}, "D"),
        ({"unexpected": 1}, "default"),
        ("plain text", "plain text"),
    ],
)
def test_error_shapes(body: object, expected: str) -> None:
    assert error_message(body, default="default") == expected


def test_a_404_is_an_empty_page_only_where_the_mapping_says_so(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    memo = MAPPING.resources.creditmemo
    empty = memo.model_copy(update={"not_found": "empty"})
    with client_for(server) as client:
        script.responses = [(404, {"error": "no records"}, {})]
        with pytest.raises(BlueCherryResponseError, match="404"):
            list(client.iter_pages(memo, None))
        script.responses = [(404, {"error": "no records"}, {})]
        assert list(client.iter_pages(empty, None)) == [[]]
        assert len(script.requests) == 2  # a 404 is never retried
        script.responses = [(401, {"error": "denied"}, {})]  # only a 404: other errors stay errors
        with pytest.raises(BlueCherryAuthError):
            list(client.iter_pages(empty, None))


def test_records_are_read_at_the_resources_envelope(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    wrapped = MAPPING.resources.location.model_copy(update={"envelope": "result.items"})
    with client_for(server) as client:
        script.responses = [(200, {"result": {"items": [{"location": "WH1"}], "count": 1}}, {})]
        assert list(client.iter_pages(wrapped, None)) == [[{"location": "WH1"}]]
        script.responses = [(200, {"result": {"items": []}}, {})]
        assert list(client.iter_pages(wrapped, None)) == [[]]
        # the envelope missing from an answer is a read error, never "no records"
        script.responses = [(200, {"data": [{"location": "WH1"}]}, {})]
        with pytest.raises(BlueCherryResponseError, match="no 'result.items'"):
            list(client.iter_pages(wrapped, None))
        script.responses = [(200, {"data": {"header": [{"location": "WH1"}]}}, {})]  # the default: bcapi's shapes
        assert list(client.iter_pages(MAPPING.resources.location, None)) == [[{"location": "WH1"}]]


# --- read-ahead (the backfills) ------------------------------------------------------------------------


@pytest.mark.parametrize("size", [200, 150, 7])  # 450 records: a short last page, an empty last page, many pages
def test_read_ahead_gives_the_same_pages(bc_sandbox: ServerThread, size: int) -> None:
    with client_for(bc_sandbox) as client:
        plain = list(client.iter_pages(CUSTOMER, None, page_size=size))
        ahead = list(client.iter_pages(CUSTOMER, None, page_size=size, read_ahead=True))
    assert ahead == plain and sum(len(p) for p in plain) >= 450


def _header(*pkeys: int) -> tuple[int, dict[str, object], dict[str, str]]:
    return 200, {"data": {"header": [{"pkey": k, "last_mod": "2026-01-01 00:00:00"} for k in pkeys]}}, {}


def _wait_for_requests(script: Script, count: int, seconds: float = 5.0) -> int:
    deadline = time.monotonic() + seconds
    while len(script.requests) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(script.requests)


def test_read_ahead_asks_for_the_next_page_while_the_caller_holds_a_full_one(
        scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [_header(1, 2), _header(3)]
    with client_for(server) as client:
        pages = client.iter_pages(CUSTOMER, None, page_size=2, read_ahead=True)
        assert next(pages) == [{"pkey": 1, "last_mod": "2026-01-01 00:00:00"},
                               {"pkey": 2, "last_mod": "2026-01-01 00:00:00"}]
        assert _wait_for_requests(script, 2) == 2  # page 2 asked for before the caller asked
        assert script.requests[1].query_params["_pgno"] == "2"
        assert next(pages) == [{"pkey": 3, "last_mod": "2026-01-01 00:00:00"}]
        assert list(pages) == []
    time.sleep(0.1)
    assert len(script.requests) == 2  # a short page is the last: nothing is read past it


def test_read_ahead_raises_a_pages_error_when_the_caller_asks_for_that_page(
        scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [_header(1, 2), (400, {"errors": [{"errorMessage": "bad page"}]}, {})]
    with client_for(server) as client:
        pages = client.iter_pages(CUSTOMER, None, page_size=2, read_ahead=True)
        assert len(next(pages)) == 2  # the caller has page 1 whatever page 2 brings
        with pytest.raises(BlueCherryResponseError, match="bad page"):
            next(pages)


def test_a_caller_that_stops_early_is_not_held_by_the_page_in_flight(scripted: tuple[Script, ServerThread]) -> None:
    script, server = scripted
    script.responses = [_header(1, 2), (503, {"message": "busy"}, {})] + [(503, {"message": "busy"}, {})] * 5
    client = BlueCherryClient(server.url, KEY, timeout=5, max_attempts=6, backoff_base_seconds=0.5,
                              backoff_max_seconds=0.5, mapping=MAPPING)
    pages = client.iter_pages(CUSTOMER, None, page_size=2, read_ahead=True)
    assert len(next(pages)) == 2
    started = time.monotonic()
    pages.close()  # page 2 is still being retried on the read-ahead thread
    assert time.monotonic() - started < 0.4
    client.close()  # the thread's next attempt finds the client closed and ends: nothing is left running
    deadline = time.monotonic() + 5
    while any(t.name.startswith("bluecherry-read-ahead") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the read-ahead thread outlived its client"
        time.sleep(0.01)


def test_a_page_in_flight_does_not_hold_the_process_at_exit() -> None:
    """A backfill stopped by an error or Ctrl-C while page 2 is still being read exits at once: the read-ahead
    thread is a daemon (a pool's worker thread is joined at exit, through every retry of the page)."""
    script = textwrap.dedent("""
        import time
        from connectors.bluecherry.client import _read_ahead

        def page(number):
            if number > 1:
                time.sleep(30)  # Blue Cherry slow to answer, retries to come
            return [{"pkey": number}] * 2

        pages = _read_ahead(page, 2)
        next(pages)
        raise SystemExit(3)
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 3, done.stderr
    assert time.monotonic() - started < 15, "the process waited for the page in flight"
