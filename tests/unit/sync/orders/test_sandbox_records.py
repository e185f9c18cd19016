"""The Blue Cherry sandbox's records (generated in-process, no HTTP) parse cleanly through the mapping,
so the contract between the sandbox and this domain holds."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from config.mapping import Mapping
from sandbox.bluecherry.config import BlueCherrySandboxConfig
from sandbox.bluecherry.sandbox import BlueCherrySandbox
from sync.orders.desired import DeliveredView, desired_operations
from sync.orders.records import parse_order_documents


def test_sandbox_orders_and_documents_parse_without_problems() -> None:
    mapping = Mapping()
    sandbox = BlueCherrySandbox(BlueCherrySandboxConfig(customers=40, orders=150))
    children: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for resource in ("pick", "invoice", "creditmemo"):
        for row in sandbox.store.iterate(resource):
            record = row.record()
            children[str(record["ord_num"])][resource].append(record)
    metrics: Counter[str] = Counter()
    orders = [row.record() for row in sandbox.store.iterate("order")]
    assert orders
    for raw in orders:
        docs = children[str(raw["ord_num"])]
        parsed = parse_order_documents(raw, mapping, docs["pick"], docs["invoice"], docs["creditmemo"])
        assert parsed.documents is not None and not parsed.problems, parsed.problems
        result = desired_operations(parsed.documents, DeliveredView(), mapping)
        assert not result.problems, result.problems
        metrics.update(op.payload["metric"] for op in result.operations)
    assert metrics[mapping.metrics.placed_order] and metrics[mapping.metrics.fulfilled_order]
