"""A loopback stand-in for Sentry's ingest endpoint: records every envelope it is sent, decoded."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def decode_body(body: bytes, encoding: str) -> bytes:
    """The envelope bytes whatever the SDK compressed them with (gzip, brotli, deflate or nothing)."""
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        # optional: the SDK sends brotli only when it found it installed too
        import brotli  # type: ignore[import-not-found]  # noqa: PLC0415

        return bytes(brotli.decompress(body))
    if encoding in ("", "identity"):
        return body
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


def envelope_items(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """(item header, payload) pairs of one envelope: a header line, then items with optional ``length``."""
    _, _, rest = raw.partition(b"\n")
    items: list[tuple[dict[str, Any], bytes]] = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"]:]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


@dataclass
class SentryIngest:
    envelopes: list[bytes] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SentryIngest:
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ingest.paths.append(self.path)
                if self.path.startswith("/api/1/envelope/"):
                    ingest.envelopes.append(decode_body(body, self.headers.get("Content-Encoding", "")))
                self._reply(b'{"id": "00000000000000000000000000000000"}')

            def do_GET(self) -> None:  # noqa: N802 - the probe's httpx target
                ingest.paths.append(self.path)
                self._reply(b'{"data": []}')

            def _reply(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def items(self) -> list[tuple[dict[str, Any], bytes]]:
        return [item for envelope in self.envelopes for item in envelope_items(envelope)]
