"""`--record FILE`: one JSON object per line for every request, Authorization redacted."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Scope = dict[str, Any]


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


class Recorder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def write(self, scope: Scope, request_body: bytes, status: int | None, response_body: bytes) -> None:
        headers = {}
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = "Klaviyo-API-Key [REDACTED]" if name == "authorization" else value
        entry = {
            "time": datetime.now(tz=UTC).isoformat(),
            "method": scope.get("method"),
            "path": scope.get("path"),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": headers,
            "body": _decode(request_body),
            "status": status,
            "dropped": bool(scope.get("sandbox.dropped")),
            "response": _decode(response_body),
        }
        line = json.dumps(entry, default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    async def around(self, scope: Scope, receive: Any, send: Any, inner: Any) -> None:
        request_chunks: list[bytes] = []
        response_chunks: list[bytes] = []
        status: list[int] = []

        async def recording_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                request_chunks.append(message.get("body", b""))
            return message

        async def recording_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                response_chunks.append(message.get("body", b""))
            await send(message)

        try:
            await inner(scope, recording_receive, recording_send)
        finally:
            self.write(scope, b"".join(request_chunks), status[0] if status else None, b"".join(response_chunks))

    def close(self) -> None:
        with self._lock:
            self._file.close()
