"""Record keys (`customer:C0000042`, `order:100466/line:3`, `inventory:SKU@WH1`): how operators and the fleet's
state name an ERP record.

An IBM i tenant serves its codes in fixed-width CHAR columns, padded with spaces (`'C0000042  '`). A tenant's
mapping normally trims them (`normalise = { code = ["trim"] }`), but a key built from a raw value (a record the
poller could not read, a mapping without the normaliser) would carry the padding into the exception register,
the ledger and the dead letters: two keys for one record, and output that looks broken. So every key is made
without spaces around its parts: `record_key` when one is built, `clean_record_key` where one is stored.
"""

from __future__ import annotations

import re

_AROUND_SEPARATORS = re.compile(r"\s+(?=[:/@|])|(?<=[:/@|])\s+")


def clean_record_key(key: str) -> str:
    """`key` without the spaces at its ends and around its separators (`:` `/` `@` `|`); spaces inside a part stay."""
    return _AROUND_SEPARATORS.sub("", key.strip())


def record_key(resource: str, value: object) -> str:
    """`resource:value` with the value's padding trimmed; `resource:?` when there is no value."""
    text = "" if value is None else str(value).strip()
    return f"{resource}:{text or '?'}"
