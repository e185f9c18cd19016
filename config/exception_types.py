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
        "ERP revenue and Klaviyo's disagree (reconciliation).",
        "Reserved for a revenue reconciliation between Blue Cherry and Klaviyo; no flow records it today "
        "(`bcsync audit order NUMBER` shows one order's trail).",
        "Compare `bcsync audit order NUMBER` with the order in Blue Cherry.",
        recorded=False,
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
)

EXCEPTION_TYPES: dict[str, ExceptionType] = {t.name: t for t in _TYPES}
