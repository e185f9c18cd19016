"""The pydantic models of the Klaviyo request bodies the fleet sends, every object closed.

Klaviyo refuses any attribute it does not declare (400 `invalid`, with a pointer), although neither its
OpenAPI file nor its SDK models say so. Every model here therefore forbids undeclared fields, except the
free-form objects (`properties`, `custom_metadata`, `patch_properties.append/unappend`), typed `FreeForm`.
Shapes follow the OpenAPI schemas named in each body class's docstring-free name (ProfileUpsertQuery ->
ProfileUpsertBody, EventsBulkCreateJob -> EventBulkCreateJobBody, ...). Builders are in `builders`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.klaviyo.limits import (
    MAX_BULK_PROFILES,
    MAX_CATALOG_BULK_ROWS,
    MAX_SUBSCRIBE_PROFILES,
    MAX_UNSUBSCRIBE_PROFILES,
)

FreeForm = dict[str, Any]


class Closed(BaseModel):
    """Klaviyo refuses undeclared attributes: so do we."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- shared pieces ---------------------------------------------------------------------------


class Location(Closed):
    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    country: str | None = None
    region: str | None = None
    zip: str | None = None
    timezone: str | None = None
    ip: str | None = None
    latitude: str | float | None = None
    longitude: str | float | None = None


class PatchProperties(Closed):
    append: FreeForm | None = None
    unappend: FreeForm | None = None
    unset: str | list[str] | None = None


class ProfileMeta(Closed):
    patch_properties: PatchProperties | None = None


class ProfileAttributes(Closed):
    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    organization: str | None = None
    locale: str | None = None
    title: str | None = None
    image: str | None = None
    location: Location | None = None
    properties: FreeForm | None = None


class ProfileResource(Closed):
    type: Literal["profile"]
    id: str | None = None
    attributes: ProfileAttributes
    meta: ProfileMeta | None = None

    @model_validator(mode="after")
    def _identified(self) -> ProfileResource:
        a = self.attributes
        if not (self.id or a.email or a.phone_number or a.external_id):
            raise ValueError("a profile needs one of email, phone_number, external_id or id")
        return self


class ListRef(Closed):
    type: Literal["list"]
    id: str


class ListRelationship(Closed):
    data: ListRef


class ListsRelationship(Closed):
    data: list[ListRef]


def _iso(value: Any) -> Any:
    """Accept datetimes or ISO 8601 strings; refuse anything Klaviyo would not parse as date-time."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        raise ValueError("a date-time is required, not a date")
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date-time") from None
    return value


# --- profile import --------------------------------------------------------------------------


class ProfileUpsertBody(Closed):
    data: ProfileResource


class ProfileImportJobAttributes(Closed):
    profiles: ProfileCollection


class ProfileCollection(Closed):
    data: list[ProfileResource] = Field(max_length=MAX_BULK_PROFILES)


class ProfileImportJobRelationships(Closed):
    lists: ListsRelationship | None = None


class ProfileImportJob(Closed):
    type: Literal["profile-bulk-import-job"]
    attributes: ProfileImportJobAttributes
    relationships: ProfileImportJobRelationships | None = None


class ProfileImportJobBody(Closed):
    data: ProfileImportJob


# --- events ----------------------------------------------------------------------------------


class MetricAttributes(Closed):
    name: str = Field(min_length=1, max_length=128)
    service: str | None = None


class MetricResource(Closed):
    type: Literal["metric"]
    attributes: MetricAttributes


class MetricRef(Closed):
    data: MetricResource


class EventProfileAttributes(ProfileAttributes):
    anonymous_id: str | None = None


class EventProfileResource(ProfileResource):
    attributes: EventProfileAttributes


class EventProfileRef(Closed):
    data: EventProfileResource


class BulkEventAttributes(Closed):
    """An event inside a bulk job: the profile is given once per group."""

    properties: FreeForm
    time: str | None = None
    value: float | None = None
    value_currency: str | None = Field(None, min_length=3, max_length=3)
    unique_id: str | None = None
    backfill: bool | None = None
    metric: MetricRef

    _time = field_validator("time", mode="before")(_iso)


class EventAttributes(BulkEventAttributes):
    profile: EventProfileRef


class EventResource(Closed):
    type: Literal["event"]
    attributes: EventAttributes


class EventBody(Closed):
    data: EventResource


class BulkEventResource(Closed):
    type: Literal["event"]
    attributes: BulkEventAttributes


class BulkEventCollection(Closed):
    data: list[BulkEventResource]


class BulkEventProfileRef(Closed):
    data: ProfileResource


class EventBulkCreateAttributes(Closed):
    profile: BulkEventProfileRef
    events: BulkEventCollection
    backfill: bool | None = None


class EventBulkCreate(Closed):
    type: Literal["event-bulk-create"]
    attributes: EventBulkCreateAttributes


class EventBulkCreateCollection(Closed):
    data: list[EventBulkCreate]


class EventBulkCreateJobAttributes(Closed):
    events_bulk_create: EventBulkCreateCollection = Field(alias="events-bulk-create")


class EventBulkCreateJob(Closed):
    type: Literal["event-bulk-create-job"]
    attributes: EventBulkCreateJobAttributes


class EventBulkCreateJobBody(Closed):
    data: EventBulkCreateJob


# --- subscriptions ---------------------------------------------------------------------------


class SubscribeConsent(Closed):
    consent: Literal["SUBSCRIBED"]
    consented_at: str | None = None

    _at = field_validator("consented_at", mode="before")(_iso)


class UnsubscribeConsent(Closed):
    consent: Literal["UNSUBSCRIBED"]


class SubscribeEmailChannel(Closed):
    marketing: SubscribeConsent


class SubscribeSmsChannel(Closed):
    marketing: SubscribeConsent | None = None
    transactional: SubscribeConsent | None = None


class SubscribeChannels(Closed):
    email: SubscribeEmailChannel | None = None
    sms: SubscribeSmsChannel | None = None


class UnsubscribeEmailChannel(Closed):
    marketing: UnsubscribeConsent


class UnsubscribeSmsChannel(Closed):
    marketing: UnsubscribeConsent | None = None
    transactional: UnsubscribeConsent | None = None


class UnsubscribeChannels(Closed):
    email: UnsubscribeEmailChannel | None = None
    sms: UnsubscribeSmsChannel | None = None


class SubscriptionProfileAttributes(Closed):
    """Subscription jobs accept only identifiers and `subscriptions` (not names, not external_id)."""

    email: str | None = None
    phone_number: str | None = None


class SubscribeProfileAttributes(SubscriptionProfileAttributes):
    subscriptions: SubscribeChannels


class UnsubscribeProfileAttributes(SubscriptionProfileAttributes):
    subscriptions: UnsubscribeChannels


class SubscribeProfile(Closed):
    type: Literal["profile"]
    id: str | None = None
    attributes: SubscribeProfileAttributes


class UnsubscribeProfile(Closed):
    type: Literal["profile"]
    attributes: UnsubscribeProfileAttributes


class SubscribeProfiles(Closed):
    data: list[SubscribeProfile] = Field(min_length=1, max_length=MAX_SUBSCRIBE_PROFILES)


class UnsubscribeProfiles(Closed):
    data: list[UnsubscribeProfile] = Field(min_length=1, max_length=MAX_UNSUBSCRIBE_PROFILES)


class SubscribeJobAttributes(Closed):
    profiles: SubscribeProfiles
    custom_source: str | None = None
    historical_import: bool | None = None


class UnsubscribeJobAttributes(Closed):
    profiles: UnsubscribeProfiles


class JobListRelationships(Closed):
    list: ListRelationship | None = None


class SubscribeJob(Closed):
    type: Literal["profile-subscription-bulk-create-job"]
    attributes: SubscribeJobAttributes
    relationships: JobListRelationships | None = None


class UnsubscribeJob(Closed):
    type: Literal["profile-subscription-bulk-delete-job"]
    attributes: UnsubscribeJobAttributes
    relationships: JobListRelationships | None = None


class SubscribeJobBody(Closed):
    data: SubscribeJob


class UnsubscribeJobBody(Closed):
    data: UnsubscribeJob


# --- catalog ---------------------------------------------------------------------------------


class CatalogItemCreateAttributes(Closed):
    external_id: str = Field(min_length=1)
    title: str
    description: str
    url: str
    price: float | None = None
    image_full_url: str | None = None
    image_thumbnail_url: str | None = None
    images: list[str] | None = None
    custom_metadata: FreeForm | None = None
    published: bool | None = None
    integration_type: Literal["$custom"] | None = None
    catalog_type: str | None = None


class CatalogItemUpdateAttributes(Closed):
    title: str | None = None
    description: str | None = None
    url: str | None = None
    price: float | None = None
    image_full_url: str | None = None
    image_thumbnail_url: str | None = None
    images: list[str] | None = None
    custom_metadata: FreeForm | None = None
    published: bool | None = None


class CatalogItemCreate(Closed):
    type: Literal["catalog-item"]
    attributes: CatalogItemCreateAttributes


class CatalogItemUpdate(Closed):
    type: Literal["catalog-item"]
    id: str
    attributes: CatalogItemUpdateAttributes


class CatalogItemRef(Closed):
    type: Literal["catalog-item"]
    id: str


class CatalogItemRelationship(Closed):
    data: CatalogItemRef


class CatalogVariantRelationships(Closed):
    item: CatalogItemRelationship


class CatalogVariantCreateAttributes(Closed):
    external_id: str = Field(min_length=1)
    title: str
    description: str
    sku: str
    inventory_quantity: int | float
    price: float
    url: str
    inventory_policy: Literal[0, 1, 2] | None = None
    image_full_url: str | None = None
    image_thumbnail_url: str | None = None
    images: list[str] | None = None
    custom_metadata: FreeForm | None = None
    published: bool | None = None
    integration_type: Literal["$custom"] | None = None
    catalog_type: str | None = None


class CatalogVariantUpdateAttributes(Closed):
    title: str | None = None
    description: str | None = None
    sku: str | None = None
    inventory_quantity: int | float | None = None
    inventory_policy: Literal[0, 1, 2] | None = None
    price: float | None = None
    url: str | None = None
    image_full_url: str | None = None
    image_thumbnail_url: str | None = None
    images: list[str] | None = None
    custom_metadata: FreeForm | None = None
    published: bool | None = None


class CatalogVariantCreate(Closed):
    type: Literal["catalog-variant"]
    attributes: CatalogVariantCreateAttributes
    relationships: CatalogVariantRelationships


class CatalogVariantUpdate(Closed):
    type: Literal["catalog-variant"]
    id: str
    attributes: CatalogVariantUpdateAttributes


class CatalogItemCreateBody(Closed):
    data: CatalogItemCreate


class CatalogItemUpdateBody(Closed):
    data: CatalogItemUpdate


class CatalogVariantCreateBody(Closed):
    data: CatalogVariantCreate


class CatalogVariantUpdateBody(Closed):
    data: CatalogVariantUpdate


class CatalogVariantRef(Closed):
    type: Literal["catalog-variant"]
    id: str


class _Rows(Closed):
    """`{"data": [...]}` of at most 100 rows, as every catalog bulk job carries."""


class ItemCreateRows(_Rows):
    data: list[CatalogItemCreate] = Field(min_length=1, max_length=MAX_CATALOG_BULK_ROWS)


class ItemUpdateRows(_Rows):
    data: list[CatalogItemUpdate] = Field(min_length=1, max_length=MAX_CATALOG_BULK_ROWS)


class ItemDeleteRows(_Rows):
    data: list[CatalogItemRef] = Field(min_length=1, max_length=MAX_CATALOG_BULK_ROWS)


class VariantCreateRows(_Rows):
    data: list[CatalogVariantCreate] = Field(min_length=1, max_length=MAX_CATALOG_BULK_ROWS)


class VariantUpdateRows(_Rows):
    data: list[CatalogVariantUpdate] = Field(min_length=1, max_length=MAX_CATALOG_BULK_ROWS)


class VariantDeleteRows(_Rows):
    data: list[CatalogVariantRef] = Field(min_length=1, max_length=MAX_CATALOG_BULK_ROWS)


class ItemJobAttributes(Closed):
    items: ItemCreateRows | ItemUpdateRows | ItemDeleteRows


class VariantJobAttributes(Closed):
    variants: VariantCreateRows | VariantUpdateRows | VariantDeleteRows


class CatalogJob(Closed):
    type: Literal[
        "catalog-item-bulk-create-job",
        "catalog-item-bulk-update-job",
        "catalog-item-bulk-delete-job",
        "catalog-variant-bulk-create-job",
        "catalog-variant-bulk-update-job",
        "catalog-variant-bulk-delete-job",
    ]
    attributes: ItemJobAttributes | VariantJobAttributes


class CatalogJobBody(Closed):
    data: CatalogJob


# --- back in stock, deletion -----------------------------------------------------------------


class BisProfileAttributes(Closed):
    email: str | None = None
    phone_number: str | None = None
    external_id: str | None = None


class BisProfile(Closed):
    type: Literal["profile"]
    id: str | None = None
    attributes: BisProfileAttributes


class BisProfileRef(Closed):
    data: BisProfile


class BisAttributes(Closed):
    channels: list[Literal["EMAIL", "SMS", "PUSH", "WHATSAPP"]] = Field(min_length=1)
    profile: BisProfileRef


class BisVariantRelationship(Closed):
    data: CatalogVariantRef


class BisRelationships(Closed):
    variant: BisVariantRelationship


class BisSubscription(Closed):
    type: Literal["back-in-stock-subscription"]
    attributes: BisAttributes
    relationships: BisRelationships


class BackInStockBody(Closed):
    data: BisSubscription


class DeletionProfileAttributes(Closed):
    email: str | None = None
    phone_number: str | None = None


class DeletionProfile(Closed):
    type: Literal["profile"]
    id: str | None = None
    attributes: DeletionProfileAttributes

    @model_validator(mode="after")
    def _identified(self) -> DeletionProfile:
        if not (self.id or self.attributes.email or self.attributes.phone_number):
            raise ValueError("a deletion needs the profile's id, email or phone_number (not external_id)")
        return self


class DeletionProfileRef(Closed):
    data: DeletionProfile


class DeletionAttributes(Closed):
    profile: DeletionProfileRef


class DeletionJob(Closed):
    type: Literal["data-privacy-deletion-job"]
    attributes: DeletionAttributes


class DeletionBody(Closed):
    data: DeletionJob


ProfileImportJobAttributes.model_rebuild()
