"""The operator procedures of `bcsync playbook`: the daily and weekly checks, how to read each alert and the
erasure procedure. Written once here so docs/playbook.md is generated, never edited by hand; the numbers in them
are filled from the settings and the mapping at render time (`{name}` placeholders, see `workers.playbook`).
"""

from __future__ import annotations

DAILY_CHECKS: tuple[tuple[str, str, str], ...] = (
    # (what, command, healthy when)
    ("Is every process up?", "`bcsync health beat`, `bcsync health poller`, `bcsync health worker --lane L` (exit 0 "
     "= healthy; compose runs them as health checks: `docker compose ps`)",
     "every one exits 0"),
    ("Are the lanes draining?", "`bcsync status`",
     "`fast` queue near 0; no unacknowledged messages of dead workers; latency p95 of the fast lane in seconds"),
    ("Is the poller reading every resource?", "`bcsync status` (poller lines)",
     "no `poller read errors` line, no `watermarks held back` line"),
    ("Is beat ticking?", "`bcsync status` (beat line) or `bcsync health beat`",
     "last tick a few seconds ago"),
    ("New dead letters?", "`bcsync dlq list`",
     "none, or each one understood (fix the cause, then `bcsync dlq requeue`)"),
    ("New exceptions for your team?", "`bcsync exceptions --owner operations` (ecommerce, finance)",
     "each one has an action under way (section \"Exception types\")"),
    ("A mapping problem?", "`bcsync status` (`mapping problem ...` lines)",
     "none: each is one exception naming the mapping key to fix"),
)

WEEKLY_CHECKS: tuple[tuple[str, str, str], ...] = (
    ("Redis memory against its limit", "`bcsync status` (Redis memory line)",
     "below 70% of `maxmemory` (docs/deployment.md, \"Redis memory\", to size it)"),
    ("Dead letters close to deletion", "`bcsync exceptions --type dead_letter_expiring`",
     "none: requeue or purge each before it expires ({dead_letter_ttl_days} days)"),
    ("Old open exceptions", "`bcsync exceptions --status open`",
     "none older than a week; resolved causes stop counting up"),
    ("Sample an order end to end", "`bcsync audit order NUMBER` for a recent shipped order",
     "every document's event delivered, amounts as in Blue Cherry"),
    ("The mapping still reads the tenant", "`bcsync mapping check`", "VERDICT: PASS (exit 0)"),
)

STATUS_LINES: tuple[tuple[str, str, str], ...] = (
    # (what `bcsync status` shows, what it means, what to do)
    ("`fast` queue growing", "consent, new customers, restocks are late",
     "check the fast workers are up (`bcsync health worker --lane fast`), check paused / parked endpoints"),
    ("`batch` queue large", "a backfill or a bulk update is draining",
     "nothing: batch never takes the fast lane's reserve ({fast_reserve_pct}% of every budget)"),
    ("`unacked of dead workers: fast 2`", "a fast worker died holding two messages",
     "nothing: a live worker puts them back on the lane within {redelivery_seconds} s; check a fast worker is up"),
    ("`unacked` old on a lane, none of dead workers", "a live worker is on a long task (a bulk job)",
     "nothing, unless it nears the hard time limit ({task_time_limit_seconds} s)"),
    ("delayed retries high, an endpoint paused", "Klaviyo answered 429; the fleet waits its Retry-After",
     "nothing; if it persists, another integration may be using the account's quota (`BCSYNC_RATE_SHARE`)"),
    ("an endpoint parked (`endpoint_parked`)",
     "Klaviyo throttled the account for longer than {throttle_park_seconds} s",
     "contact Klaviyo support; the work resumes by itself when the throttle ends"),
    ("dead letters", "records Klaviyo refused or that failed {max_attempts} times",
     "`bcsync dlq list`, `bcsync dlq show ID`; fix the cause, then `bcsync dlq requeue`"),
    ("Redis memory near max", "retention too long for the volume, or a backlog",
     "docs/deployment.md, \"Redis memory\"; Redis refuses writes when full (noeviction)"),
    ("`stock_held` in the buffers line", "stock figures waiting for rows of their SKU from the same scan",
     "nothing while it drains; rows that stop arriving are given up after {stock_complete_seconds} s "
     "(`stock_incomplete`)"),
    ("`mapping problem <type> <key>: <count>x, e.g. ...`", "the mapping cannot read part of the tenant's data",
     "fix the mapping key the exception names, restart, re-read the records (docs/operations.md)"),
    ("`poller read errors: <resource> <kind> since ...`",
     "every poll of that resource fails: `not_found` (the path), `auth` (the subscription key), `response` "
     "(a body not in the mapped shape), `unavailable` (Blue Cherry down), `bug` (see the poller log)",
     "fix the cause; the next cycle reads from the watermark, nothing is lost"),
    ("`poller invalid records (last cycle)`", "records the poller could not read (each an `invalid_record`)",
     "`bcsync exceptions --type invalid_record`"),
    ("`watermarks held back more than {watermark_held_cycles} cycles`",
     "that resource's read fails, or its window keeps moving while it is paged",
     "a read error: fix it; a moving window: lower `poll_seconds` or raise `page_size` if it persists"),
    ("beat's last tick more than a few seconds ago, or never",
     "no beat runs the schedule: debounced stock figures and the daily profile batch are not sent "
     "(after {stale_after_seconds} s a `beat_stale` exception)",
     "start `bcsync beat` (its log says why it stopped)"),
    ("`freshness thresholds crossed: <type> <subject> since ...`",
     "a freshness value (watermark age, last successful read, oldest queued message, delayed retry overdue, 429s, "
     "budget use; the `freshness, ...` lines above it show them all) went over its threshold: one exception of "
     "that type and one Sentry message",
     "the action of its exception type (the owners' tables above); it resolves itself once the value has "
     "stayed under its threshold for {freshness_clear_after_seconds} s (docs/operations.md, \"Freshness and lag\")"),
)

ERASE_STEPS: tuple[str, ...] = (
    "Find the customer code in Blue Cherry (the profile's `external_id` in Klaviyo).",
    "See what would be deleted: `bcsync erase CODE --dry-run` (nothing is sent or deleted).",
    "Erase: `bcsync erase CODE`, and answer the confirmation (`--yes` in scripts). Klaviyo's data-privacy deletion "
    "of the profile goes on the fast lane; the fleet's own state of the customer is purged (fingerprint, "
    "daily-batch entry, delivery-ledger trail, exceptions) and a tombstone keeps the poller from re-creating the "
    "profile from the erased state.",
    "A customer unknown to both Blue Cherry and Klaviyo is refused with a non-zero exit: check the code.",
    "To keep the customer out for good, set its delete flag (`fields.customer.delete_flag`) in Blue Cherry: a "
    "later change of the customer there is synced again (the ERP is the truth).",
    "A deletion that fails is a dead letter that never expires (`bcsync dlq list --lane fast`): requeue it once the "
    "cause is fixed.",
)
