"""Klaviyo's `filter=` query language: `equals(email,"a@x.com")`, `any(id,["A","B"])`,
`greater-than(updated,2024-01-01T00:00:00Z)`, combined with `and(...)` or commas."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<punct>[(),\[\]])|(?P<bare>[^\s(),\[\]"']+))"""
)


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    op: str
    field: str
    value: Any


@dataclass(frozen=True)
class Junction:
    op: str  # and | or | not
    parts: tuple[Node, ...]


Node = Condition | Junction


def _tokens(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"unexpected character at position {position}: {text[position : position + 10]!r}")
        position = match.end()
        if match.group("str") is not None:
            raw = match.group("str")[1:-1]
            tokens.append(("value", re.sub(r"\\(.)", r"\1", raw)))
        elif match.group("punct") is not None:
            tokens.append((match.group("punct"), None))
        else:
            tokens.append(("bare", match.group("bare")))
    return tokens


def _literal(bare: str) -> Any:
    lowered = bare.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    try:
        return int(bare)
    except ValueError:
        pass
    try:
        return float(bare)
    except ValueError:
        pass
    try:
        return parse_datetime(bare)
    except ValueError as exc:
        raise FilterError(f"{bare!r} is not a quoted string, number, boolean, null or ISO datetime") from exc


def parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self, kind: str) -> Any:
        if self.peek() != kind:
            found = self.tokens[self.i] if self.i < len(self.tokens) else "end of filter"
            raise FilterError(f"expected {kind!r}, found {found}")
        value = self.tokens[self.i][1]
        self.i += 1
        return value

    def expressions(self) -> list[Node]:
        nodes = [self.expression()]
        while self.peek() == ",":
            self.take(",")
            nodes.append(self.expression())
        return nodes

    def expression(self) -> Node:
        op = self.take("bare")
        self.take("(")
        if op in ("and", "or", "not"):
            parts = self.expressions()
            self.take(")")
            return Junction(op, tuple(parts))
        field = self.take("bare")
        self.take(",")
        value = self.value()
        self.take(")")
        return Condition(op, field, value)

    def value(self) -> Any:
        kind = self.peek()
        if kind == "value":
            return self.take("value")
        if kind == "bare":
            return _literal(self.take("bare"))
        if kind == "[":
            self.take("[")
            items: list[Any] = []
            while self.peek() != "]":
                items.append(self.value())
                if self.peek() == ",":
                    self.take(",")
            self.take("]")
            return items
        raise FilterError(f"expected a value, found {self.tokens[self.i] if kind else 'end of filter'}")


def parse_filter(text: str) -> Junction:
    """All top-level expressions joined by `and`; raises FilterError with what went wrong."""
    parser = _Parser(text)
    nodes = parser.expressions()
    if parser.peek() is not None:
        raise FilterError(f"unexpected {parser.tokens[parser.i]} after the filter")
    return Junction("and", tuple(nodes))


def conditions(node: Node) -> list[Condition]:
    if isinstance(node, Condition):
        return [node]
    return [c for part in node.parts for c in conditions(part)]


def evaluate(node: Node, lookup: Any) -> bool:
    """`lookup(field)` gives the record's value for a field name."""
    if isinstance(node, Junction):
        results = (evaluate(part, lookup) for part in node.parts)
        if node.op == "and":
            return all(results)
        if node.op == "or":
            return any(results)
        return not all(results)
    actual = lookup(node.field)
    if node.op == "equals":
        return bool(actual == node.value)
    if node.op == "any":
        return actual in (node.value if isinstance(node.value, list) else [node.value])
    if actual is None:
        return False
    if node.op == "greater-than":
        return bool(actual > node.value)
    if node.op == "greater-or-equal":
        return bool(actual >= node.value)
    if node.op == "less-than":
        return bool(actual < node.value)
    if node.op == "less-or-equal":
        return bool(actual <= node.value)
    raise FilterError(f"operator {node.op!r} is not supported")
