"""The contract between the domain (`sync/`) and delivery (`tasks/`, `connectors/klaviyo`).

The domain decides *what* Klaviyo must receive as a list of `Operation`s; delivery decides *how*
(single call or bulk job, which endpoint, within which rate budget) and records it in the ledger.
`payload` holds plain attributes, not JSON:API envelopes; `connectors.klaviyo` builds and validates the
bodies. `key` is the idempotency key the delivery ledger is keyed by: sending an operation whose key is
already in the ledger (with the same or a newer `version`) is a no-op.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.lanes import Lane
from sync.record_keys import clean_record_key

OperationKind = Literal[
    # payload: profile-import attributes: email, phone_number, external_id, first_name, last_name,
    #          location{address1,address2,city,region,zip,country}, properties{...}
    "profile_upsert",
    # payload: metric (name), profile{email (guests) | external_id (customers: `id` put in at delivery)},
    #          properties{}, time (ISO 8601),
    #          value (float|None), value_currency (str|None), unique_id (str), backfill (bool)
    "event",
    # payload: channel ("email"|"sms"), profile{email|phone_number, id (put in at delivery)}, list_id (str|None),
    #          custom_source (str|None), consented_at (ISO|None), historical_import (bool)
    "subscribe",
    # payload: channel ("email"|"sms"), profile{email|phone_number}, list_id (str|None)
    "unsubscribe",
    # payload: catalog-item attributes: external_id, title, description, url, price?, image_full_url?,
    #          custom_metadata?, published?
    "catalog_item_upsert",
    # payload: catalog-variant attributes: external_id, item_external_id, title, description, sku,
    #          inventory_quantity, inventory_policy, price, url, image_full_url?, published?
    "catalog_variant_upsert",
    # payload: external_id (variant), inventory_quantity (int); `version` carries the ERP version
    "variant_inventory",
    # payload: external_id, kind ("item"|"variant"), action ("unpublish"|"delete")
    "catalog_retire",
    # payload: profile{email|phone_number|external_id|id}
    "profile_deletion",
]


class JsonPayload(dict[str, Any]):
    """A payload read from JSON (`Operation.from_json`): every value in it is a JSON value already. Equal to the
    plain dict of the same items; a payload assigned or copied into a plain dict is converted again by `wire()`."""


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: OperationKind
    key: str = Field(description="Idempotency / ledger key, e.g. 'profile:C1001' or 'event:Placed Order:SO1'")
    lane: Lane = "default"
    payload: dict[str, Any]
    version: str | None = Field(None, description="ERP version it was computed from (newest wins)")
    record: str | None = Field(None, description="ERP record it came from, for operators: 'customer:C1001'")
    profile_of: str | None = Field(
        None, description="Customer code whose Klaviyo profile the operation names: delivery puts the profile's "
        "id in (subscribes, events, aggregates wait for it) or the email/phone Klaviyo holds (unsubscribes)",
    )
    repair: bool = Field(
        False, description="A reconciliation repair (`bcsync reconcile --repair`), or a stock figure a catalog job's "
        "row overwrote (delivery/senders/catalog.py): sent even though the ledger holds its key (Klaviyo lost or "
        "changed what was delivered); the ledger entry and `bcsync audit` show the marker",
    )

    @field_validator("record")
    @classmethod
    def _without_padding(cls, record: str | None) -> str | None:
        # an ERP's fixed-width codes keep their spaces in raw values: one record, one key (sync.record_keys)
        return None if record is None else clean_record_key(record)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Operation:
        """An operation read from its JSON (`model_dump_json`), validated as any other."""
        op = cls.model_validate_json(raw)
        op.payload = JsonPayload(op.payload)
        return op

    def wire(self) -> dict[str, Any]:
        """The operation as JSON-ready data, as `model_dump(mode="json")` gives it. An operation read from JSON
        holds only JSON values already: its fields are taken as they are (the payload as a plain dict: the
        message encoder hands dict subclasses to a slower path), without pydantic's walk of the payload (a
        backfill packs every event into an envelope this way: the walk was 30 us an event). So the fields must stay
        JSON values with no serializer of their own; a payload edited in place must be given JSON values only."""
        if type(self.payload) is not JsonPayload:
            return self.model_dump(mode="json")
        wire = {name: getattr(self, name) for name in _FIELDS}
        wire["payload"] = dict(self.payload)
        return wire


_FIELDS = tuple(Operation.model_fields)
