"""Benchmark output into a doc: a block between ``<!-- NAME -->`` and ``<!-- /NAME -->`` markers is replaced by a
script's output (appended when the doc has none), so the numbers a doc shows are always some run's output."""

from __future__ import annotations

from pathlib import Path


def write_block(path: Path, name: str, block: str) -> None:
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    fresh = f"{begin}\n{block.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + fresh + tail
    else:
        text = text.rstrip() + "\n\n" + fresh + "\n"
    path.write_text(text, encoding="utf-8")
