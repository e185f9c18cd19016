"""The three delivery lanes, defined once: every Celery queue, worker, rate budget, dead-letter queue and
operation names one of these.

``fast`` (consent, new customers, scarce stock, cancellations), ``default`` (order lifecycle), ``batch``
(bulk updates, backfills, repairs). It lives in config/ because every layer needs it and config is the one
layer they may all import.
"""

from __future__ import annotations

from typing import Literal, get_args

Lane = Literal["fast", "default", "batch"]
LANES: tuple[Lane, ...] = get_args(Lane)

# What each lane carries, for operators (`bcsync playbook`); the order is the lanes' urgency.
LANE_CARRIES: dict[Lane, str] = {
    "fast": "consent changes, new customers and changes of the immediate profile fields, scarce and high-demand "
            "stock, cancellations, privacy deletions",
    "default": "the order lifecycle: Placed / Ordered Product / Updated / Fulfilled / Refunded Order",
    "batch": "the daily profile batch, catalog items and variants, plentiful stock, backfills, repairs",
}
