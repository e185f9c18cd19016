"""The Klaviyo endpoints the fleet calls: method, path and rate-limit tier, keyed by a short name.

The key is what the limiter budgets (one budget per key) and what errors, pauses and parks name.
Tiers are Klaviyo's published per-account limits (`x-klaviyo-ratelimit` in the OpenAPI file):
fixed windows of one second (burst) and one minute (steady).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote


@dataclass(frozen=True)
class Tier:
    name: str
    burst: int  # requests per second
    steady: int  # requests per minute


XS = Tier("XS", 1, 15)
S = Tier("S", 3, 60)
M = Tier("M", 10, 150)
L = Tier("L", 75, 750)
XL = Tier("XL", 350, 3500)
DELETION = Tier("deletion", 3, 60)
# The reporting API's values reports: 1/s, 2/m - and 225 a day, which no window here expresses: the attribution
# report keeps its own daily count (state.attribution_cache.AttributionCache.take_values_call)
VALUES = Tier("values", 1, 2)
VALUES_PER_DAY = 225


@dataclass(frozen=True)
class Endpoint:
    key: str
    method: str
    path: str  # may hold one `{id}` placeholder
    tier: Tier

    def url_path(self, id: str | None = None) -> str:
        if "{id}" in self.path:
            if not id:
                raise ValueError(f"endpoint {self.key!r} needs an id for {self.path}")
            return self.path.replace("{id}", quote(id, safe=""))
        return self.path


def _e(key: str, method: str, path: str, tier: Tier) -> Endpoint:
    return Endpoint(key, method, path, tier)


ENDPOINTS: dict[str, Endpoint] = {
    e.key: e
    for e in (
        _e("profile-import", "POST", "/api/profile-import", L),
        _e("profiles:get", "GET", "/api/profiles", L),
        _e("events", "POST", "/api/events", XL),
        _e("events:get", "GET", "/api/events", XL),
        _e("metrics:get", "GET", "/api/metrics", M),
        _e("campaign-values-reports", "POST", "/api/campaign-values-reports", VALUES),
        _e("flow-values-reports", "POST", "/api/flow-values-reports", VALUES),
        _e("event-bulk-create-jobs", "POST", "/api/event-bulk-create-jobs", M),
        _e("profile-bulk-import-jobs", "POST", "/api/profile-bulk-import-jobs", M),
        _e("profile-bulk-import-jobs:get", "GET", "/api/profile-bulk-import-jobs/{id}", M),
        _e("profile-bulk-import-jobs:errors", "GET", "/api/profile-bulk-import-jobs/{id}/import-errors", M),
        _e("subscribe", "POST", "/api/profile-subscription-bulk-create-jobs", L),
        _e("unsubscribe", "POST", "/api/profile-subscription-bulk-delete-jobs", L),
        _e("catalog-items", "POST", "/api/catalog-items", L),
        _e("catalog-items:update", "PATCH", "/api/catalog-items/{id}", L),
        _e("catalog-variants", "POST", "/api/catalog-variants", L),
        _e("catalog-variants:update", "PATCH", "/api/catalog-variants/{id}", L),
        _e("catalog-items:delete", "DELETE", "/api/catalog-items/{id}", L),
        # reads of the whole catalog (reconciliation): lists of 100 per page
        _e("catalog-items:get", "GET", "/api/catalog-items", L),
        _e("catalog-variants:get", "GET", "/api/catalog-variants", L),
        _e("catalog-variants:delete", "DELETE", "/api/catalog-variants/{id}", L),
        # Every catalog bulk job (create/update/delete of items and variants) and its status GET:
        # Klaviyo counts them in the L tier; one shared budget keeps the key space small.
        # The client puts the job collection (CATALOG_JOB_PATHS) into the path.
        _e("catalog-bulk", "POST", "/api/catalog-{kind}-bulk-{action}-jobs", L),
        _e("catalog-bulk:get", "GET", "/api/catalog-{kind}-bulk-{action}-jobs/{id}", L),
        _e("back-in-stock", "POST", "/api/back-in-stock-subscriptions", XL),
        _e("data-privacy-deletion", "POST", "/api/data-privacy-deletion-jobs", DELETION),
    )
}

# Catalog bulk job collections by kind; the "catalog-bulk" endpoints' paths are built from these.
CATALOG_JOB_PATHS: dict[str, str] = {
    "item-create": "catalog-item-bulk-create-jobs",
    "item-update": "catalog-item-bulk-update-jobs",
    "item-delete": "catalog-item-bulk-delete-jobs",
    "variant-create": "catalog-variant-bulk-create-jobs",
    "variant-update": "catalog-variant-bulk-update-jobs",
    "variant-delete": "catalog-variant-bulk-delete-jobs",
}


def endpoint(key: str) -> Endpoint:
    try:
        return ENDPOINTS[key]
    except KeyError:
        raise KeyError(f"unknown Klaviyo endpoint {key!r}; known: {', '.join(sorted(ENDPOINTS))}") from None
