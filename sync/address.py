"""The one postal address model: a customer's bill-to, an order's bill-to and ship-to.

Field names are Klaviyo's location names (`address1`, `region`, `zip`), so a customer's bill-to becomes a
profile `location` as it is. The ERP names are the tenant mapping's (`config.mapping.AddressFields`:
`addr1`, `state`, `zipcode`, ...); each parser reads them through the mapping. A field the record does not
give is None (customers) or "" (orders, which read every field as text).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# The fields of a Klaviyo profile `location` (everything but the addressee and the contact fields).
LOCATION_FIELDS = frozenset({"address1", "address2", "city", "region", "zip", "country"})


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str | None = None
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    region: str | None = None
    zip: str | None = None
    country: str | None = None
    email: str | None = None
    phone: str | None = None

    def location(self) -> dict[str, str]:
        """The Klaviyo profile `location`: the fields that are set (None is left out)."""
        return self.model_dump(include=set(LOCATION_FIELDS), exclude_none=True)
