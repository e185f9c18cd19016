"""Record fingerprints: what the poller last handed on for each record, to tell changed from re-read.

Pure part: `mapped_values` picks the fields the mapping names for a resource (logical name -> value),
`fingerprint` hashes them stably (key order and child-row order do not matter), `field_digests` gives one
short digest per field so a later read can tell WHICH fields changed without storing the values.

State part: `FingerprintStore`, one Redis hash per resource (record key -> compact entry), written only
after the change was emitted. The entry is ``<fingerprint>|<last_mod>|<seq>|<base64 digests>``: about 250
bytes for a customer, whatever the values' size.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from config.mapping import AddressFields, FieldTable, Mapping, Predicate
from sync.fields import addresses, normalised

NAME_BYTES = 3  # digest of a logical field name inside an entry
VALUE_BYTES = 5  # digest of a field's value: enough to say "this one changed"


def _canonical(value: Any) -> Any:
    """Order-independent form: dict keys sorted by json.dumps, lists of child rows sorted."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True, default=str))
    return value


def _digest(value: Any, size: int) -> bytes:
    text = json.dumps(
        _canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).digest()


def _child_rows(container: Any) -> list[Any]:
    if isinstance(container, dict):
        rows = container.get("rows", container.get("rows-i", []))
        return rows if isinstance(rows, list) else [rows]
    return container if isinstance(container, list) else []


def mapped_values(resource: str, record: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
    """The values of the fields the mapping names for `resource`, by logical name, after the mapping's
    normalisers (a cosmetic difference they remove is no change).

    Strings are field names; nested models with a ``rows`` name are child collections (projected onto their
    own mapped fields), or flat addresses (projected per address type); ``groups`` is a tuple of field names; a
    predicate adds its field when no other key reads it. Other tuples are code lists, not fields.
    """
    model = getattr(mapping.fields, resource, None)
    if not isinstance(model, FieldTable):
        return {k: v for k, v in record.items() if k not in ("pkey", "last_mod")}
    return _project(model, normalised(record, model))


# Keys of the [fields.*] tables that hold choices, not field names, added after fingerprints were first stored:
# left out, so the fingerprints of the mappings of before stay what they were (no mass re-send on upgrade).
_CHOICES = frozenset({"layout", "bill_to_prefix", "ship_to_prefix"})


def _project(model: BaseModel, record: AnyMapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in type(model).model_fields:
        spec = getattr(model, name)
        if isinstance(spec, str):
            if name != "rows" and name not in _CHOICES:
                values[name] = record.get(spec)
        elif isinstance(spec, tuple) and name == "groups":
            values[name] = {field: record.get(field) for field in spec}
        elif isinstance(spec, AddressFields) and spec.layout == "flat":
            values[name] = {kind: _project(spec, row) for kind, row in addresses(record, spec).items()}
        elif isinstance(spec, BaseModel) and isinstance(rows_name := getattr(spec, "rows", None), str):
            rows = _child_rows(record.get(rows_name))
            values[name] = [_project(spec, row) if isinstance(row, dict) else row for row in rows]
        elif isinstance(spec, Predicate) and spec.field not in _read_by(model):
            values[name] = record.get(spec.field)
    return values


def _read_by(model: BaseModel) -> set[str]:
    return {value for name in type(model).model_fields if isinstance(value := getattr(model, name), str)}


def fingerprint(values: dict[str, Any]) -> str:
    return _digest(values, 16).hex()


def field_digests(values: dict[str, Any]) -> dict[bytes, bytes]:
    return {_name_digest(name): _digest(value, VALUE_BYTES) for name, value in values.items()}


def _name_digest(name: str) -> bytes:
    return hashlib.blake2b(name.encode("utf-8"), digest_size=NAME_BYTES).digest()


def changed_fields(previous: dict[bytes, bytes], values: dict[str, Any]) -> list[str]:
    """Logical names whose value digest differs from (or is missing in) the previous entry."""
    return sorted(
        name
        for name, value in values.items()
        if previous.get(_name_digest(name)) != _digest(value, VALUE_BYTES)
    )


@dataclass(frozen=True)
class StoredFingerprint:
    fingerprint: str
    last_mod: str
    seq: int
    digests: dict[bytes, bytes]

    def encode(self) -> str:
        blob = b"".join(name + value for name, value in sorted(self.digests.items()))
        return f"{self.fingerprint}|{self.last_mod}|{self.seq}|{base64.b64encode(blob).decode('ascii')}"

    @classmethod
    def decode(cls, text: str) -> StoredFingerprint | None:
        """None for an entry this code cannot read (then the record counts as never seen)."""
        try:
            fp, last_mod, seq, blob64 = text.split("|", 3)
            blob = base64.b64decode(blob64)
            step = NAME_BYTES + VALUE_BYTES
            digests = {
                blob[i : i + NAME_BYTES]: blob[i + NAME_BYTES : i + step] for i in range(0, len(blob), step)
            }
            return cls(fp, last_mod, int(seq), digests)
        except (ValueError, TypeError):
            return None


