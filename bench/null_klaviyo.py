"""A null Klaviyo: answers 202 with an empty body to every POST, at once, and counts requests per path.

    .venv/bin/python -m bench.null_klaviyo --port 8089        # GET /_stats -> {"POST /api/events": 12, ...}

What the fleet's own CPU per event is measured against (bench/compare.py): no limits, no validation, no
storage - the cost left is the sender's. Plain asyncio streams with keep-alive, so the server itself stays
cheap next to what it measures. Only the event endpoints a bench sends to are meaningful here (a bulk import
or catalog job would want its job read back, which this server does not keep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter

COUNTS: Counter[str] = Counter()


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if length:
                await reader.readexactly(length)
            path = target.split("?", 1)[0]
            if method == "GET" and path == "/_stats":
                body = json.dumps(dict(COUNTS)).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\n\r\n" + body)
            else:
                COUNTS[f"{method} {path}"] += 1
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        asyncio.run(_main(args.port))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
