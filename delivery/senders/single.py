"""Single calls, one operation each: retiring a catalog entry, requesting a profile deletion."""

from __future__ import annotations

from typing import Any

from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.errors import PermanentError
from delivery.results import SendResult, ledger_entry
from sync.operations import Operation


def send_single(ops: list[Operation], client: KlaviyoClient, result: SendResult) -> None:
    for op in ops:
        try:
            resp = _SINGLE[op.kind](client, op.payload)
        except PermanentError as exc:
            if op.kind == "catalog_retire" and exc.status == 404:
                # retiring what Klaviyo never had (discontinued before it was ever synced) is already done
                result.delivered.append(ledger_entry(op, 404, op.kind))
                continue
            if len(ops) == 1:
                raise
            result.rejected.append((op, exc))
            continue
        result.delivered.append(ledger_entry(op, resp.status, op.kind, resp.data))



def _retire(client: KlaviyoClient, payload: dict[str, Any]) -> Any:
    return client.retire_catalog_entry(payload)



def _delete_profile(client: KlaviyoClient, payload: dict[str, Any]) -> Any:
    return client.request_profile_deletion(payload)



_SINGLE = {
    "catalog_retire": _retire,
    "profile_deletion": _delete_profile,
}

