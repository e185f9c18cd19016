"""One entry per operation kind: how it is sent, the Klaviyo endpoint it draws on, how it is packed into
messages and whether an erasure drops it. Adding an operation kind is one entry here plus its sender.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from config.lanes import LANES, Lane
from connectors.klaviyo.client import KlaviyoClient
from connectors.klaviyo.endpoints import ENDPOINTS
from connectors.klaviyo.limits import (
    MAX_BULK_EVENTS,
    MAX_BULK_PROFILES,
    MAX_CATALOG_BULK_ROWS,
    MAX_SUBSCRIBE_PROFILES,
    MAX_UNSUBSCRIBE_PROFILES,
)
from delivery.results import SendResult
from delivery.senders import catalog, consent, events, profiles, single
from sync.operations import Operation

SendFunction = Callable[[list[Operation], KlaviyoClient, SendResult], None]
ALL_LANES: frozenset[Lane] = frozenset(LANES)
BATCH_LANE: frozenset[Lane] = frozenset({"batch"})


@dataclass(frozen=True)
class Sender:
    send: SendFunction
    endpoint: str  # the Klaviyo endpoint (family) whose rate budget it spends
    batch_size: int = 1  # operations per message where the kind is packed
    packed_on: frozenset[Lane] = frozenset()  # lanes on which operations of the kind share messages
    erasable: bool = False  # dropped when the customer was erased after the operation was computed
    # endpoints only a packed message calls (bulk jobs and their status reads): on a lane that does not pack
    # the kind, one operation is one call to `endpoint`, never these
    packed_endpoints: tuple[str, ...] = ()

    def packs(self, lane: str) -> bool:
        return lane in self.packed_on


SENDERS: dict[str, Sender] = {
    "profile_upsert": Sender(profiles.send_profiles, "profile-import", MAX_BULK_PROFILES, BATCH_LANE, erasable=True,
                             packed_endpoints=("profile-bulk-import-jobs", "profile-bulk-import-jobs:get",
                                               "profile-bulk-import-jobs:errors")),
    "event": Sender(events.send_events, "events", MAX_BULK_EVENTS, BATCH_LANE, erasable=True,
                    packed_endpoints=("event-bulk-create-jobs",)),
    # consent always travels in jobs, on every lane (unsubscribes first: see `delivery.envelope`)
    "subscribe": Sender(consent.send_subscribe, "subscribe", MAX_SUBSCRIBE_PROFILES, ALL_LANES, erasable=True),
    "unsubscribe": Sender(consent.send_unsubscribe, "unsubscribe", MAX_UNSUBSCRIBE_PROFILES, ALL_LANES,
                          erasable=True),
    # catalog and stock: one call for one operation, bulk jobs for more (the stock flush packs them itself)
    "variant_inventory": Sender(catalog.send_variant_inventory, "catalog-variants", MAX_CATALOG_BULK_ROWS),
    "catalog_item_upsert": Sender(catalog.send_catalog_items, "catalog-items", MAX_CATALOG_BULK_ROWS),
    "catalog_variant_upsert": Sender(catalog.send_catalog_variants, "catalog-variants", MAX_CATALOG_BULK_ROWS),
    "catalog_retire": Sender(single.send_single, "catalog-items"),
    "profile_deletion": Sender(single.send_single, "data-privacy-deletion-jobs"),
}



def fast_lane_endpoints() -> frozenset[str]:
    """The Klaviyo endpoints the fast lane may call, where the limiter keeps a reserve for it: every endpoint
    but those only packed messages of kinds the fast lane never packs call (bulk event jobs, bulk profile
    imports and their status reads). Derived from SENDERS, so a kind packed on the fast lane brings its bulk
    endpoints back; an endpoint nobody declared keeps the reserve (lookups and reads run on every lane)."""
    packed_elsewhere = {key for sender in SENDERS.values() if not sender.packs("fast")
                        for key in sender.packed_endpoints}
    packed_on_fast = {key for sender in SENDERS.values() if sender.packs("fast") for key in sender.packed_endpoints}
    return frozenset(set(ENDPOINTS) - (packed_elsewhere - packed_on_fast))
