"""Every Celery task name, in one place: the poller, beat, the delivery engine and the tasks themselves use
these. The names are the wire contract of messages already in queues, the delayed-retry schedule and dead
letters: never rename one (add a new task and keep the old name registered instead).

It lives in config/ because beat's schedule (config/celery.py) and every layer above need the names, and
config is the one layer they may all import.
"""

from __future__ import annotations

DELIVER = "bcsync.deliver"  # the one name before 2026-12; still registered for messages written under it
CHECK_PROFILE_IMPORT_JOB = "bcsync.check_profile_import_job"
CHECK_CATALOG_JOB = "bcsync.check_catalog_job"
CHECK_CONSENT_JOBS = "bcsync.check_consent_jobs"
HANDLE_CHANGE = "bcsync.handle_change"
HANDLE_CUSTOMER_CHANGES = "bcsync.handle_customer_changes"
GUARD_CONSENT = "bcsync.customers.guard_consent"  # a first sync's consent, retried apart from its page
DAILY_PROFILE_BATCH = "bcsync.daily_profile_batch"
DUPLICATE_PROFILE = "bcsync.customers.duplicate_profile"
FLUSH_ORDER_BULK = "bcsync.orders.flush_bulk"
RESYNC_ORDERS = "bcsync.orders.resync"  # orders another worker was computing, or whose refund ids must be read
RELEASE_ORDERS = "bcsync.orders.release"  # beat: closed orders past their grace period keep only their facts
FLUSH_STOCK = "bcsync.flush_stock"
STOCK_RECORDS = "bcsync.stock_records"
RELEASE_STOCK_SCAN = "bcsync.stock.release_scan"  # a closed stock scan: compute the SKUs it no longer holds
EXPIRE_STOCK_SCANS = "bcsync.stock.expire_scans"  # beat: scans whose rows stopped arriving are given up
RECOMPUTE_STOCK_SWEEP = "bcsync.stock.recompute_sweep"  # a location change: every SKU again, a step a task
CHECK_FRESHNESS = "bcsync.monitor.freshness"  # beat: ages, 429s and budget use against their thresholds
RECONCILE = "bcsync.reconcile"  # beat: reconciliation of areas (recently changed records, or a nightly slice)
ATTRIBUTION_REPORT = "bcsync.report.attribution"  # beat: the daily attribution report (its cache, its exceptions)

# The delivery task under one name per operation kind, so Flower shows what is delivered
# (`bcsync.deliver.subscribe`, `bcsync.deliver.event`, ...). The kinds are sync.operations.OperationKind's
# (a unit test keeps the two equal; config/ cannot import sync/).
DELIVERY_KINDS = (
    "profile_upsert", "event", "subscribe", "unsubscribe", "catalog_item_upsert", "catalog_variant_upsert",
    "variant_inventory", "catalog_retire", "profile_deletion",
)


def deliver_task(kind: str) -> str:
    """The delivery task's name for envelopes of `kind` (the generic name for a kind this version lacks)."""
    return f"{DELIVER}.{kind}" if kind in DELIVERY_KINDS else DELIVER


DELIVER_BY_KIND = tuple(deliver_task(kind) for kind in DELIVERY_KINDS)

ALL = (
    *DELIVER_BY_KIND, DELIVER, CHECK_PROFILE_IMPORT_JOB, CHECK_CATALOG_JOB, CHECK_CONSENT_JOBS,
    HANDLE_CHANGE, HANDLE_CUSTOMER_CHANGES,
    GUARD_CONSENT, DAILY_PROFILE_BATCH, DUPLICATE_PROFILE, FLUSH_ORDER_BULK, RESYNC_ORDERS, RELEASE_ORDERS, FLUSH_STOCK,
    STOCK_RECORDS, RELEASE_STOCK_SCAN, EXPIRE_STOCK_SCANS, RECOMPUTE_STOCK_SWEEP, CHECK_FRESHNESS, RECONCILE,
    ATTRIBUTION_REPORT,
)
