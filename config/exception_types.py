"""Every exception type the fleet records, defined once: its default owner team, what it means and what to do.

The exception register (`state.exceptions.ExceptionRegister`) keeps data problems by type; `bcsync exceptions`
lists them, `[owners]` in the mapping file (`config.mapping.ExceptionOwners`) can hand a type to another team,
and `bcsync playbook` writes docs/playbook.md from this registry. Tests keep the three in step: a type recorded
anywhere in the code must be here with an owner, a meaning and an action, and `ExceptionOwners` must name
exactly these types with these defaults (tests/unit/config/test_exception_types.py).

It lives in config/ because the mapping (owners), the flows that record and the commands that explain all need
it, and config is the one layer they may all import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Owner = Literal["operations", "ecommerce", "finance"]
OWNERS: tuple[Owner, ...] = ("operations", "ecommerce", "finance")


@dataclass(frozen=True)
class ExceptionType:
    name: str
    owner: Owner  # the default owner team; the mapping's [owners] may name another
    summary: str  # one line: the comment of its key in config/mapping.example.toml
    meaning: str  # what happened, what the record key and details hold
    action: str  # what the owner does about it
    recorded: bool = True  # False: reserved (its owner can be set) but no flow records it today


_TYPES: tuple[ExceptionType, ...] = (
    ExceptionType(
        "invalid_record", "operations",
        "A record that cannot be read (missing/invalid fields).",
        "A Blue Cherry record failed validation (missing or invalid e-mail, impossible date, broken text, no "
        "location code); the rest of its page went on. Record key: the record (`customer:C1`, `order:SO7`). A "
        "mapping problem behind many of them has its own `unknown_status` / `unparseable_date` row.",
        "Correct the record in Blue Cherry; the next poll picks it up. Many at once: look for the mapping problem "
        "(`bcsync status`, mapping problem lines).",
    ),
    ExceptionType(
        "customer_mismatch", "operations",
        "Identifiers that belong to different profiles; no usable shopper.",
        "Klaviyo holds this customer's identifiers (e-mail, phone) on different profiles (a 409 "
        "`duplicate_profile`), or an order's customer cannot be matched to one shopper.",
        "Merge the profiles in Klaviyo, then `bcsync dlq requeue ID` the dead letter.",
    ),
    ExceptionType(
        "unusable_phone", "operations",
        "A customer's phone is no valid number: the profile went without it.",
        "The customer's phone in Blue Cherry is no valid number for the tenant's region "
        "(`tenant.default_phone_region`): the profile went without it, everything else was sent.",
        "Correct the phone in Blue Cherry; the next poll sends it.",
    ),
    ExceptionType(
        "profile_missing", "operations",
        "Work waited too long for a customer's Klaviyo profile; dead-lettered.",
        "Subscribes, order events or aggregates of a customer waited `BCSYNC_PROFILE_WAIT_SECONDS` for its Klaviyo "
        "profile, which the fleet never wrote; they were dead-lettered (the exception lists them).",
        "Look at the customer's own exceptions (`invalid_record`) and dead letters (its `profile_upsert`); fix "
        "that, then `bcsync dlq requeue ID`.",
    ),
    ExceptionType(
        "klaviyo_partial_failure", "operations",
        "Klaviyo accepted a profile without part of it (its header says what).",
        "Klaviyo accepted a profile but left part of it out (`X-Klaviyo-Partial-Failure`, e.g. `phone_number`).",
        "Correct the field in Blue Cherry; the next poll sends it.",
    ),
    ExceptionType(
        "consent_conflict", "ecommerce",
        "Klaviyo holds a newer unsubscribe or suppression than the ERP consent.",
        "On a customer's first sync Blue Cherry and Klaviyo disagree: Blue Cherry says subscribed but Klaviyo "
        "holds a newer unsubscribe or suppression (the fleet did not subscribe), or Blue Cherry says not "
        "subscribed while Klaviyo is subscribed and Blue Cherry has no newer dated opt-out, e.g. a storefront "
        "sign-up (the fleet did not unsubscribe).",
        "Confirm consent with the customer; update Blue Cherry or leave it as it is.",
    ),
    ExceptionType(
        "delivery_failed", "operations",
        "A delivery dead-lettered.",
        "Reserved for a delivery that failed for good; today such work is a dead letter (`bcsync dlq list`) "
        "instead.",
        "`bcsync dlq show ID`, fix the cause, `bcsync dlq requeue ID`.",
        recorded=False,
    ),
    ExceptionType(
        "endpoint_parked", "operations",
        "Klaviyo throttled an endpoint for longer than the park cap.",
        "Klaviyo throttled an endpoint (a Retry-After) for longer than `BCSYNC_THROTTLE_PARK_SECONDS`: its work "
        "waits in the delayed schedule. Record key: the endpoint.",
        "Contact Klaviyo support if it lasts; the work resumes by itself when the throttle ends. Another "
        "integration may be using the account's quota (`BCSYNC_RATE_SHARE`).",
    ),
    ExceptionType(
        "unknown_status", "operations",
        "A status value the mapping does not know: one row per value, with examples.",
        "One row per status value the mapping does not name, however many records carry it (record key "
        "`<resource>.<field>=<value>`; details: the mapping key, its codes, up to 5 example records). The "
        "records are left out, never guessed.",
        "If the code is real, add it to the mapping key named in `details.mapping_key`, restart, re-read the "
        "records; if it is a typo in Blue Cherry, correct the records.",
    ),
    ExceptionType(
        "revenue_mismatch", "finance",
        "Reconciliation: Klaviyo's revenue of an order (Placed - Cancelled - Refunded) is not the ERP's net.",
        "`bcsync reconcile orders` summed the order's revenue events Klaviyo holds (the Placed Order, or its latest "
        "Updated Order, less Cancelled and Refunded) and the ERP's net over the same events differs by more than a "
        "cent (record key `order:NUMBER`; details: both values). A missing or extra event is reported as such.",
        "Compare `bcsync audit order NUMBER` with the order in Blue Cherry and Klaviyo's events; Klaviyo events "
        "cannot be edited: correct reports with the `erp_` aggregates, which the fleet keeps true.",
    ),
    ExceptionType(
        "catalog_error", "ecommerce",
        "A style or SKU that cannot become a catalog item or variant.",
        "A style or SKU the catalog flow cannot use (the reason says which field; no price, no colour or size), "
        "a stock configuration that cannot work (critical), or stock for a SKU whose style was not read yet "
        "(a warning).",
        "Fix the style in Blue Cherry; a warning for stock ahead of its style clears itself with the next style "
        "poll.",
    ),
    ExceptionType(
        "storefront_ref_missing", "ecommerce",
        "A storefront order without its storefront reference: its events wait (they would match no Placed Order).",
        "An order of a channel whose storefront sends Placed Order (`storefront_sends_placed`) has no storefront "
        "reference in Blue Cherry: its Fulfilled / Cancelled / Refunded events would match no Placed Order in "
        "Klaviyo, so they wait.",
        "Put the storefront's order reference on the order in Blue Cherry; its events then go under it.",
    ),
    ExceptionType(
        "refund_ids_unreadable", "operations",
        "Klaviyo refused the read-back of an order's refund ids (key scopes): its refunds wait.",
        "Klaviyo refused (4xx) the read-back of which credit memo of an order went under which Refunded Order "
        "id: the order's refunds wait, tried again every 30 s; everything else of the order went.",
        "Give the API key `events:read` and `metrics:read`; the refunds then go by themselves.",
    ),
    ExceptionType(
        "dead_letter_expiring", "operations",
        "A dead letter nobody requeued or purged is deleted in a few days.",
        "A dead letter (record key `dlq:ID`) nobody requeued or purged is deleted at the time the reason gives "
        "(`BCSYNC_DEAD_LETTER_EXPIRY_WARNING_DAYS` before its expiry).",
        "`bcsync dlq show ID`, then requeue or purge it.",
    ),
    ExceptionType(
        "dead_letter_expired", "operations",
        "Retention deleted a dead letter after its warning (its work not done).",
        "Retention deleted that dead letter after its warning: its work was not done; the entry is in the "
        "exception's details (`--json`).",
        "Redo the work by hand if it still matters.",
    ),
    ExceptionType(
        "consent_lookup_refused", "operations",
        "Klaviyo refused the consent guard's read (key scopes): the first-sync consent that needed it is "
        "dead-lettered; the rest of the page went.",
        "Klaviyo refused the consent guard's read (401/403: the API key lost `profiles:read`); the first-sync "
        "consent that needed it is dead-lettered (the id is in the record key), the rest of the page went.",
        "Fix the key's scopes, then `bcsync dlq requeue ID`.",
    ),
    ExceptionType(
        "consent_unconfirmed", "operations",
        "A consent job not seen applied in time: the latest state was sent again.",
        "A consent job Klaviyo accepted (202) was not seen applied on the customer's profile within "
        "`BCSYNC_CONSENT_CONFIRM_SECONDS`; the fleet sent the latest state again (`details.sent_again`), and the "
        "next change of that customer and channel no longer waits for it.",
        "Look at the profile's consent in Klaviyo; if it still differs from Blue Cherry after a few minutes, "
        "Klaviyo is refusing the profile (suppressed, merged): fix it there. 'could not be read back' (401/403) "
        "in the reason: the API key lacks `profiles:read`.",
    ),
    ExceptionType(
        "beat_stale", "operations",
        "Beat stopped ticking: stock figures and the hourly profile batch are not sent.",
        "No beat has ticked for longer than `BCSYNC_STALE_AFTER_SECONDS`: debounced stock figures and the "
        "profile batch are not sent.",
        "Start `bcsync beat` (its log says why it stopped); `bcsync health beat` exits 0 again once it ticks.",
    ),
    ExceptionType(
        "buffer_stale", "operations",
        "A buffer (stock figures, order bulk, catalog outbox) holds work its flush misses.",
        "A buffer (stock figures past their debounce, the order bulk buffer, the catalog outbox) has held work "
        "for longer than `BCSYNC_STALE_AFTER_SECONDS`: its flush does not run or fails.",
        "Check beat (`bcsync health beat`) and the batch and fast workers; their logs say why the flush fails.",
    ),
    ExceptionType(
        "stock_incomplete", "operations",
        "Inventory rows of a poll cycle or CSV report never arrived: the SKU's figure was sent from the rows "
        "stored.",
        "Rows of a SKU that a poll cycle or CSV report delivered never reached the workers within "
        "`BCSYNC_STOCK_COMPLETE_SECONDS` (`details.missing_warehouses`; `scan:<source>`: the read itself stopped "
        "half-way): the SKU's figure was sent from the rows stored.",
        "Look for dead letters of `handle_change inventory:...` or `stock_records` and requeue them; otherwise the "
        "next change of those rows corrects the figure.",
    ),
    ExceptionType(
        "unparseable_date", "operations",
        "Dates of a field that no configured format reads: one row per field, with examples.",
        "One row per date field whose values no configured format reads (record key `<resource>.<field>`; the "
        "reason names a value and every format tried).",
        "Add the tenant's format to `resources.<r>.date_formats` or `tenant.date_formats`, restart, re-read the "
        "records. A single impossible date on one record is bad data: correct it in Blue Cherry.",
    ),
    ExceptionType(
        "variant_id_mismatch", "operations",
        "Stock's variant ids (catalog.variant_external_id) match none of the catalog's variants: one row, with "
        "examples.",
        "One row: stock's variant ids match none of the catalog's variants, so stock is never sent "
        "(`details.examples`: SKU, the id stock computed, the catalog's). Typical cause: `{upc}` with EAN-13 in "
        "the styles and UPC-A in the inventory.",
        "Make `catalog.variant_external_id` and the `[fields.inventory]` / `[fields.style]` names give both "
        "records the same values, restart, then re-read the inventory.",
    ),
    ExceptionType(
        "recon_profile_missing", "operations",
        "Reconciliation: a customer has no Klaviyo profile.",
        "`bcsync reconcile customers` found no profile for a customer in scope (by external_id, e-mail or phone). "
        "Record key `customer:CODE`; details: the profile the fleet would write.",
        "`bcsync reconcile customers --repair` writes it again (batch lane, marked `repair`); if it comes back, "
        "look for the customer's `invalid_record` or a dead letter.",
    ),
    ExceptionType(
        "recon_profile_extra", "operations",
        "Reconciliation: a Klaviyo profile carries an external_id no Blue Cherry customer has.",
        "A full `bcsync reconcile customers` read every profile: this one's external_id is no customer of Blue "
        "Cherry (deleted, erased, or written by another integration). Record key `profile:ID`.",
        "Find who wrote it; delete it in Klaviyo or `bcsync erase` the customer if it was erased. Never repaired.",
    ),
    ExceptionType(
        "recon_profile_split", "operations",
        "Reconciliation: one customer is spread over two or more Klaviyo profiles.",
        "The customer's external_id, e-mail and phone are held by different profiles (details: the profile ids); "
        "events and consent may land on either.",
        "Merge the profiles in Klaviyo (keep the one with the external_id); the next run reports nothing.",
    ),
    ExceptionType(
        "recon_profile_merged", "operations",
        "Reconciliation: a customer's profile was merged into another customer's in Klaviyo.",
        "The customer has no profile of its own and its order events sit on another customer's profile "
        "(details: that profile and its external_id): someone merged the two in Klaviyo. The fleet does not undo it.",
        "Decide with the owners of both customers; unmerge is not possible in Klaviyo: delete the wrong events or "
        "accept the merge and mark one customer as a duplicate in Blue Cherry.",
    ),
    ExceptionType(
        "recon_profile_field", "operations",
        "Reconciliation: a profile's e-mail, phone, external_id or name is not the ERP's.",
        "The customer's profile differs from what the fleet writes (details: desired and actual per field): an "
        "edit in Klaviyo, another integration, or a lost write.",
        "`bcsync reconcile customers --repair` writes the ERP's values again (batch lane, marked `repair`); if "
        "another integration keeps changing it, stop that one.",
    ),
    ExceptionType(
        "recon_consent_mismatch", "operations",
        "Reconciliation: Klaviyo's consent differs from the ERP's and the ERP is the newer.",
        "The ERP's consent for a channel (details: channel, desired, actual) is not what Klaviyo holds, and Klaviyo "
        "holds nothing newer: a subscription job Klaviyo dropped, or a lost change. Record key "
        "`consent:<channel>:CODE`.",
        "`bcsync reconcile consent --repair` sends the ERP's consent again (fast lane, marked `repair`).",
    ),
    ExceptionType(
        "recon_consent_klaviyo_side", "ecommerce",
        "Reconciliation: Klaviyo holds a newer opt-out (or opt-in) the ERP does not know (two-way consent).",
        "Klaviyo's consent for the channel is newer than the ERP's: an unsubscribe (or a sign-up) made in Klaviyo "
        "or the storefront. The fleet never overwrites it. Record key `consent:<channel>:CODE`, with the customer "
        "code.",
        "Update the customer's opt-in in Blue Cherry to match (the customer decided), or confirm with the customer.",
    ),
    ExceptionType(
        "recon_event_missing", "operations",
        "Reconciliation: an order event the ERP requires is not in Klaviyo.",
        "An event the fleet computes for the order (record key `event:<metric>:<unique_id>`, matched by the "
        "`bcsync_key` property) is not in Klaviyo: a bulk event job that silently dropped rows, or a deletion.",
        "`bcsync reconcile orders --repair` re-delivers it (batch lane, marked `repair`).",
    ),
    ExceptionType(
        "recon_event_extra", "operations",
        "Reconciliation: Klaviyo holds an order event no rule produces (or one twice).",
        "An event with the fleet's key for an order in scope that the order's documents no longer produce, or the "
        "same key twice (record key `<key>#<event id>`). Klaviyo events cannot be edited.",
        "Delete the event in Klaviyo if flows must not see it; otherwise leave it: aggregates are computed from "
        "the ERP.",
    ),
    ExceptionType(
        "recon_event_value", "operations",
        "Reconciliation: an Ordered Product or Fulfilled Order event carries another value than the ERP's.",
        "The event's value (details: desired, actual) differs from what the order's documents give by more than a "
        "cent. Klaviyo events cannot be edited; a second event would count twice.",
        "Check the document in Blue Cherry; delete and let `--repair` re-deliver the event if reports depend on it.",
    ),
    ExceptionType(
        "recon_aggregate_mismatch", "operations",
        "Reconciliation: a profile's erp_ aggregates are not the sums of its orders.",
        "The profile's `erp_` properties (order count, revenue, refunds, dates) differ from the sums of the "
        "customer's orders in Blue Cherry (details: the properties).",
        "`bcsync reconcile orders --repair` writes the aggregates again (batch lane, marked `repair`).",
    ),
    ExceptionType(
        "recon_stock_mismatch", "operations",
        "Reconciliation: a variant's inventory_quantity is not its available to sell.",
        "The catalog variant's `inventory_quantity` in Klaviyo differs from available to sell computed from the "
        "inventory rows (record key `variant:EXTERNAL_ID`; details: both figures).",
        "`bcsync reconcile stock --repair` sends the figure again (batch lane, marked `repair`).",
    ),
    ExceptionType(
        "recon_catalog_missing", "ecommerce",
        "Reconciliation: a catalog item or variant of Blue Cherry is not in Klaviyo.",
        "A style (item) or SKU (variant) the catalog flow writes is not in Klaviyo's catalog (record key "
        "`catalog-item:ID` / `catalog-variant:ID`).",
        "`bcsync reconcile catalog --repair` writes it again (batch lane, marked `repair`); if it was deleted in "
        "Klaviyo on purpose, discontinue it in Blue Cherry.",
    ),
    ExceptionType(
        "watermark_stale", "operations",
        "Freshness: a resource's watermark (newest Blue Cherry change handed on) is older than its threshold.",
        "The poller's watermark of the resource (record key: the resource) is older than "
        "`BCSYNC_WATERMARK_MAX_AGE_SECONDS` (or the resource's own in `BCSYNC_WATERMARK_MAX_AGE_BY_RESOURCE`) and "
        "the poller is stopped, its reads fail or its window keeps moving (a resource it reads cleanly that has not "
        "changed in Blue Cherry is not late, and not raised). Raised once per crossing (one Sentry message); "
        "resolved by itself once the watermark is young again for `BCSYNC_FRESHNESS_CLEAR_AFTER_SECONDS`.",
        "`bcsync health poller` and `bcsync status` (poller read errors): start the poller or fix its reads. If "
        "the resource simply has not changed in Blue Cherry for that long, raise its threshold.",
    ),
    ExceptionType(
        "poller_read_stale", "operations",
        "Freshness: the poller has not read a resource successfully for longer than its interval plus the bound.",
        "The last successful read of the resource (record key) is older than its poll interval plus "
        "`BCSYNC_POLLER_READ_MAX_DELAY_SECONDS`: the poller is stopped, waits for a lock nobody renews, or every "
        "read fails. Raised once per crossing; resolved by itself once a read succeeds again.",
        "`bcsync health poller`; start `bcsync poller`, or fix what its log and `bcsync status` (poller read "
        "errors) say.",
    ),
    ExceptionType(
        "lane_lagging", "operations",
        "Freshness: the oldest message waiting on a lane is older than the lane's threshold.",
        "The oldest message on the lane (record key: the lane), or in its taking list, has waited longer than "
        "`BCSYNC_QUEUE_AGE_MAX_<LANE>_SECONDS`: the lane's workers are down, stuck or too few for the load. "
        "Raised once per crossing; resolved by itself once the lane catches up.",
        "`bcsync health worker --lane LANE`; start or scale the lane's workers (`bcsync worker --lane LANE`).",
    ),
    ExceptionType(
        "delayed_overdue", "operations",
        "Freshness: a delayed retry of a lane is past its due time and not back on its lane.",
        "The delayed-retry schedule holds an entry of the lane (record key) past its due time by more than "
        "`BCSYNC_DELAYED_OVERDUE_MAX_SECONDS`: no worker's drainer publishes it (every worker runs one), or "
        "publishing fails. Raised once per crossing; resolved by itself once the schedule is drained.",
        "Check that workers run (`bcsync health worker`) and their logs for `drainer step drain failed`.",
    ),
    ExceptionType(
        "klaviyo_throttled", "operations",
        "Freshness: Klaviyo answered one endpoint with more 429s than the threshold in the window.",
        "Klaviyo answered the endpoint (record key) with more than `BCSYNC_KLAVIYO_429_MAX` 429s within "
        "`BCSYNC_KLAVIYO_429_WINDOW_SECONDS`: another integration uses the account's quota, or the fleet's share is "
        "set above what the account leaves it. The work waits and is not lost. Resolved by itself once it stops.",
        "Find the other integration using the account, or lower `BCSYNC_RATE_SHARE_MAX` / `BCSYNC_RATE_SHARE`.",
    ),
    ExceptionType(
        "budget_exhausted", "operations",
        "Freshness: the fleet used nearly all of its share of an endpoint's steady limit this minute.",
        "The endpoint's (record key) requests this minute passed `BCSYNC_BUDGET_USE_MAX` of the fleet's share of "
        "Klaviyo's steady limit: its work waits for budget. Expected during a backfill on batch endpoints; on an "
        "endpoint the fast lane uses, fast work may be late. Resolved by itself once use falls back.",
        "If it lasts on a fast-lane endpoint: pause the backfill or raise `BCSYNC_RATE_SHARE_MAX`; `bcsync status` "
        "and the metrics endpoint show the use per endpoint.",
    ),
    ExceptionType(
        "attribution_mismatch", "operations",
        "Attribution report: Klaviyo's revenue of a campaign or flow is not the ERP's placed value of its orders.",
        "`bcsync report attribution` compared Klaviyo's attributed revenue of the campaign or flow (record key "
        "`campaign:ID` / `flow:ID`; its values report for the period) with the ERP's placed value of the orders "
        "behind its attributed conversion events, and they differ by a cent or more - or an attributed event names "
        "an order the fleet's order facts do not have. Klaviyo's revenue is the sum of the Placed Order values the "
        "fleet sent, so this is a delivery problem: an event missing, sent twice under another id, or with another "
        "value. Details: both values, the period, the metric, and the orders whose event value differs (examples).",
        "Open `bcsync audit order NUMBER` for the example orders and compare the Placed Order in Klaviyo; re-run "
        "the report after a repair (`bcsync reconcile orders --repair`). Finance reads the ERP columns meanwhile.",
    ),
    ExceptionType(
        "attribution_event_missing", "operations",
        "Attribution report: an ERP order of the period has no conversion event in Klaviyo.",
        "`bcsync report attribution` found no Placed Order in Klaviyo for the ERP order (record key "
        "`order:NUMBER`) placed in the period - the fleet's own (joined by the ERP order number) or, with "
        "`BCSYNC_ATTRIBUTION_CONVERSION_METRIC=storefront`, the storefront's (joined by the storefront reference). "
        "Its revenue can be attributed to no campaign or flow. Orders placed within "
        "`BCSYNC_ATTRIBUTION_GRACE_MINUTES` are not reported yet.",
        "Fleet metric: `bcsync audit order NUMBER` shows whether its Placed Order was delivered; `bcsync reconcile "
        "orders --repair` re-sends a lost one. Storefront metric: check the storefront reference in Blue Cherry and "
        "the storefront's Klaviyo integration.",
    ),
)

EXCEPTION_TYPES: dict[str, ExceptionType] = {t.name: t for t in _TYPES}
