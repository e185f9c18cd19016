"""The client's request goes straight to its transport (issue 18's single-event path): what it sends must be what
`httpx.Client.request` sent - the fleet's headers, the body's bytes, the timeout, the base URL's path prefix - and
a proxy the environment names must still carry it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from connectors.klaviyo import client as client_module
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.endpoints import endpoint

EVENT = {"metric": "Placed Order", "profile": {"email": "a@example.com"}, "properties": {"OrderId": "SO1"},
         "time": "2026-12-01T10:00:00+00:00", "unique_id": "SO1-placed"}


def recording(seen: list[httpx.Request], status: int = 202) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(status, json={"data": {"type": "x", "id": "ID1"}} if status != 202 else None)

    return httpx.MockTransport(answer)


def test_a_single_event_carries_the_fleets_headers_body_and_timeout_to_the_base_urls_path() -> None:
    seen: list[httpx.Request] = []
    with KlaviyoClient("http://klaviyo.test/prefix/", "pk_secret", "2026-10-15", None, "default", timeout=7.5,
                       transport=recording(seen)) as client:
        client.create_event(EVENT)
        client.create_event(EVENT)  # the second one from the endpoint's remembered route
        with client._http.stream("GET", "/x") as _:  # the client's own path, for comparison
            pass
    first, second, reference = seen
    assert str(first.url) == str(second.url) == "http://klaviyo.test/prefix/api/events"
    assert first.method == "POST"
    same = {k: v for k, v in reference.headers.items() if k not in ("content-length",)}
    assert {k: v for k, v in first.headers.items() if k in same} == same  # every header the client sends
    assert first.headers["Authorization"] == "Klaviyo-API-Key pk_secret"
    assert first.headers["revision"] == "2026-10-15"
    assert first.headers["Content-Type"] == "application/vnd.api+json"
    assert first.headers["Host"] == "klaviyo.test"
    assert int(first.headers["Content-Length"]) == len(first.content) > 0
    assert first.content == second.content
    assert first.extensions["timeout"] == reference.extensions["timeout"] == httpx.Timeout(7.5).as_dict()
    assert "gzip" in first.headers["Accept-Encoding"]


def test_a_closed_client_sends_nothing() -> None:
    seen: list[httpx.Request] = []
    client = KlaviyoClient("http://klaviyo.test", "pk", "2026-10-15", None, "default", transport=recording(seen))
    client.create_event(EVENT)
    client.close()
    with pytest.raises(RuntimeError):
        client.create_event(EVENT)
    assert len(seen) == 1


def test_a_path_with_an_id_is_sent_to_its_own_url_and_is_not_remembered() -> None:
    seen: list[httpx.Request] = []
    ep = endpoint("profile-bulk-import-jobs:get")
    with KlaviyoClient("http://klaviyo.test", "pk", "2026-10-15", None, "batch",
                       transport=recording(seen, 200)) as client:
        client.get_profile_import_job("JOB-1")
        client.get_profile_import_job("JOB-2")
        assert set(client._routes) <= {"profile-bulk-import-jobs:get"} and not client._routes
    assert [str(r.url) for r in seen] == [f"http://klaviyo.test{ep.url_path('JOB-1')}",
                                          f"http://klaviyo.test{ep.url_path('JOB-2')}"]
    assert [r.method for r in seen] == ["GET", "GET"]


class _Proxy(BaseHTTPRequestHandler):
    lines: list[str] = []

    def do_POST(self) -> None:  # noqa: N802  http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Proxy.lines.append(self.requestline)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
    _Proxy.lines = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield _Proxy.lines
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_proxy_named_by_the_environment_still_carries_the_request(proxy: list[str]) -> None:
    # the host does not exist: only the proxy can answer
    with KlaviyoClient("http://klaviyo.invalid", "pk", "2026-10-15", None, "default") as client:
        assert client.create_event(EVENT).status == 202
    assert proxy == ["POST http://klaviyo.invalid/api/events HTTP/1.1"]


def test_an_httpx_without_the_rules_it_reuses_sends_through_the_whole_client(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    monkeypatch.setattr(client_module, "DIRECT_REQUESTS", False)
    with KlaviyoClient("http://klaviyo.test/prefix", "pk", "2026-10-15", None, "default",
                       transport=recording(seen)) as client:
        assert client.create_event(EVENT).status == 202
        assert not client._routes
    assert str(seen[0].url) == "http://klaviyo.test/prefix/api/events"
    assert seen[0].headers["revision"] == "2026-10-15"
