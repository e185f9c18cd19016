"""Process settings: the one place the environment (and `.env`) is read.

Every setting has the prefix ``BCSYNC_``; `.env.example` lists them all with defaults and meaning.
Tenant specifics (resources, field names, status codes, metrics, owners) are not here but in the
TOML mapping file named by ``BCSYNC_MAPPING_FILE`` (see ``config.mapping``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BCSYNC_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- Redis: broker, limiter, ledger, dead letters, exceptions, watermarks -------------------
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field("bcsync", description="Prefix of every Redis key the fleet writes (not the broker's).")

    # --- Klaviyo --------------------------------------------------------------------------------
    klaviyo_base_url: str = "https://a.klaviyo.com"
    klaviyo_api_key: SecretStr = SecretStr("")
    klaviyo_revision: str = "2026-10-15"
    klaviyo_timeout_seconds: float = 20.0
    klaviyo_max_connections: int = 20

    # --- Blue Cherry ----------------------------------------------------------------------------
    bluecherry_base_url: str = "http://127.0.0.1:8701"
    bluecherry_subscription_key: SecretStr = SecretStr("")
    bluecherry_timeout_seconds: float = 30.0
    bluecherry_max_attempts: int = 6
    csv_drop_dir: Path | None = Field(None, description="Folder of CSV report drops; unset = REST only.")

    # --- Tenant mapping -------------------------------------------------------------------------
    mapping_file: Path | None = Field(None, description="TOML mapping file; unset = the documented defaults.")

    # --- Rate limiting --------------------------------------------------------------------------
    rate_share: float = Field(
        0.8, gt=0, le=1, description="Share of each Klaviyo window the fleet always may use: the floor its adaptive "
        "share starts from and never drops below (after a 429 or when another integration uses the account).",
    )
    rate_share_max: float = Field(
        1.0, gt=0, le=1, description="Most of each Klaviyo window the fleet's share grows to while Klaviyo answers "
        "without 429s (at least rate_share). Lower it to leave room for another integration on the account.",
    )
    fast_reserve: float = Field(
        0.25, ge=0, lt=1, description="Part of the budget of every endpoint the fast lane calls that is kept for "
        "it: in each minute only what fast work could still need in the rest of it, in each second only while "
        "fast work waits; other lanes borrow the rest.",
    )
    batch_ceiling: float = Field(
        1.0, gt=0, le=1, description="Part of the budget the batch lane may take at most (after the fast reserve)."
    )
    rate_limit_scale: float = Field(1.0, gt=0, description="Multiplies Klaviyo's tier numbers (sandbox runs).")

    # --- Campaign attribution (bcsync report attribution) -------------------------------------------
    attribution_conversion_metric: Literal["fleet", "storefront"] = Field(
        "fleet", description="Which Placed Order the attribution report joins: the fleet's own (joined by the ERP "
        "order number it carries), or the storefront's (joined by the storefront reference kept in the order facts).",
    )
    attribution_storefront_metric: str = Field(
        "", description="The storefront's Placed Order metric in Klaviyo (its id, or its name when unique), for "
        "attribution_conversion_metric=storefront.",
    )
    attribution_storefront_ref_property: str = Field(
        "$event_id", description="The event property of the storefront's Placed Order holding its order reference "
        "($event_id: the event's unique id, as storefront integrations send the order id).",
    )
    attribution_values_daily_budget: int = Field(
        200, ge=0, le=225, description="Values report requests (campaign and flow together) the report may make per "
        "UTC day, of Klaviyo's 225 a day for the account; beyond it a run keeps its cached numbers.",
    )
    attribution_refresh_seconds: float = Field(
        21600, ge=0, description="A values report chunk (one month) not yet settled is read again once its cached "
        "copy is older than this.",
    )
    attribution_settle_days: int = Field(
        30, ge=0, description="A month chunk that ended this many days ago is settled: Klaviyo's attribution of it "
        "no longer changes, its values report is read once more and then kept.",
    )
    attribution_event_overlap_hours: float = Field(
        72, ge=0, description="Conversion events are read again from the latest one read less this (events that "
        "arrive late with an earlier time).",
    )
    attribution_schedule_hour: int = Field(
        4, ge=-1, le=23, description="UTC hour (at :30) of beat's daily attribution report over the last "
        "attribution_schedule_days (-1: never); it keeps the cache warm and raises the report's exceptions.",
    )
    attribution_schedule_days: int = Field(
        90, ge=1, le=365, description="The period of beat's daily attribution report: this many days up to now.",
    )
    attribution_grace_minutes: float = Field(
        60, ge=0, description="An ERP order placed this recently is not reported missing from Klaviyo yet (its "
        "Placed Order may still be on its way).",
    )

    reconcile_read_share: float = Field(
        0.5, gt=0, le=1, description="Share of what the other lanes leave of a Klaviyo endpoint's windows that "
        "reconciliation's reads may take (GET /api/profiles also serves the consent guard, which always comes first).",
    )
    reconcile_recent_seconds: float = Field(
        3600, ge=0, description="How often beat reconciles consent and stock on the records Blue Cherry changed in the "
        "last reconcile_recent_window_seconds (0: never).",
    )
    reconcile_recent_window_seconds: float = Field(
        7200, gt=0, description="What 'recently changed' means for the frequent consent and stock reconciliation.",
    )
    reconcile_nightly_hour: int = Field(
        3, ge=-1, le=23, description="UTC hour of the nightly reconciliation of every area over a rolling slice of "
        "the customers (-1: never).",
    )
    reconcile_full_days: int = Field(
        7, ge=1, description="The nightly slices cover the whole customer base every this many days (N).",
    )
    reconcile_auto_repair: str = Field(
        "", description="Areas (comma-separated: customers, consent, orders, stock, catalog) whose fleet-owned "
        "differences the scheduled reconciliation repairs by itself; the rest are reported only.",
    )
    max_inline_wait_seconds: float = Field(
        1.5, ge=0, description="Longest a task waits in its slot for the next burst window."
    )
    throttle_park_seconds: int = Field(
        900, description="A Retry-After longer than this parks the endpoint's work and raises an exception."
    )

    # --- Retries and dead letters ---------------------------------------------------------------
    max_attempts: int = Field(8, ge=1, description="Deliveries tried before a message is dead-lettered.")
    poison_message_limit: int = Field(
        3, ge=1, description="Starts of one task message that never finished (its worker died, or the hard time "
        "limit killed it) before the message is dead-lettered instead of redelivered again.",
    )
    inflight_stale_seconds: float = Field(
        3600.0, gt=0, description="An operation key claimed by an envelope not heard of for this long may be "
        "submitted again (risks a duplicate attempt, which the ledger absorbs; never a lost operation).",
    )
    stale_after_seconds: float = Field(
        120.0, gt=0, description="Beat silent, or a buffer (stock figures past their debounce, the order bulk "
        "buffer, the catalog outbox) holding work, for longer than this raises an exception for operations.",
    )
    profile_wait_seconds: float = Field(
        900.0, gt=0, description="Subscribes, order events and aggregate refreshes wait for their customer's "
        "Klaviyo profile (the upsert goes first); past this an exception names the customer and what waited, and "
        "the waiting operations are dead-lettered for an operator to requeue once the profile exists.",
    )
    profile_lease_seconds: float = Field(
        900.0, gt=0, description="Longest one profile write (a bulk import job until Klaviyo completes it) "
        "holds a customer's profile before another write may go (a lease lost with its worker ends then).",
    )
    consent_confirm_seconds: float = Field(
        300.0, gt=0, description="One consent job in flight per customer and channel: a later change waits until "
        "the profile's subscriptions read back show the earlier job applied. Past this wait a consent_unconfirmed "
        "exception is raised and the latest state is sent again.",
    )
    consent_check_seconds: float = Field(
        2.0, gt=0, description="First read-back of a consent job's profile after its 202; later reads back off "
        "(doubling, at most 30 s apart) until it is confirmed or consent_confirm_seconds have passed.",
    )
    consent_settle_seconds: float = Field(
        10.0, gt=0, description="A consent job whose profile already showed the state it sets (the read cannot "
        "tell whether it applied, and Klaviyo's last_updated did not move) counts as applied after this.",
    )
    order_lock_seconds: float = Field(
        30.0, gt=0, description="One computation per order at a time: how long an order's lock outlives a worker "
        "lost while holding it. A computation that outlasts it writes nothing and its orders are synced again.",
    )
    order_lock_wait_seconds: float = Field(
        5.0, ge=0, description="How long an order change waits for the order's lock (another worker computing it) "
        "before the order goes to the delayed schedule to be synced again a second later.",
    )
    stock_complete_seconds: float = Field(
        300.0, gt=0, description="A SKU's stock figure is held while rows of it from the same poll cycle or CSV "
        "report are still on their way (a first load spreads a SKU's warehouses over pages). A scan whose rows "
        "stop arriving for this long is given up: its held figures are sent from the rows stored and a "
        "stock_incomplete exception names each SKU and the warehouse rows that never arrived.",
    )
    variant_check_skus: int = Field(
        10, ge=1, description="Stock SKUs of styles the catalog has read, none of them found among the catalog's "
        "variants, after which stock's variant ids (catalog.variant_external_id) are declared wrong: one "
        "variant_id_mismatch exception with examples. A SKU the catalog holds under another id raises it at once.",
    )
    bulk_max_wait_seconds: float = Field(
        5.0, ge=0, description="Bulk buffers ship whole jobs at each endpoint's maximum (1,000 events, 10,000 "
        "profiles); the rest waits for more until it is this old, then leaves as a smaller job (0: never waits).",
    )
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    delayed_drain_interval_seconds: float = 1.0

    # --- Celery ---------------------------------------------------------------------------------
    visibility_timeout_seconds: int = Field(
        20, ge=1, description="A message whose worker died goes back on its lane once no heartbeat has vouched "
        "for it for this long (plus at most the redelivery check). Independent of the time limits: while its "
        "worker lives, a message is never redelivered, however long its task runs. At least 3 heartbeats.",
    )
    redelivery_check_seconds: int = Field(
        5, ge=1, description="How often workers look for messages of dead workers past the visibility timeout."
    )
    unacked_heartbeat_seconds: float = Field(
        2.0, gt=0, description="How often each worker vouches for the messages it holds unacknowledged (their "
        "time in the broker's unacknowledged index becomes now), so only a dead worker's messages grow old.",
    )
    task_soft_time_limit_seconds: int = 120
    task_time_limit_seconds: int = 180
    worker_concurrency: int = 2
    worker_lost_wait_seconds: float = Field(
        10.0, gt=0, description="How long a worker waits to confirm that a pool process died before it puts "
        "that process's message back (Celery's worker_lost_wait); each such death counts towards "
        "poison_message_limit.",
    )
    beat_lock_timeout_seconds: int = Field(
        30, ge=3, description="The beat lock (RedBeat) expires this long after its holder stops renewing it: "
        "how long a crashed beat's schedule waits before a standby beat takes over.",
    )

    # --- Retention ------------------------------------------------------------------------------
    ledger_ttl_days: int = 400
    dead_letter_ttl_days: int = Field(
        30, ge=1, description="Days a dead letter is kept for an operator's requeue or purge; the sweep warns its "
        "owner before deleting it. Consent operations and privacy deletions never expire.",
    )
    dead_letter_expiry_warning_days: int = Field(
        3, ge=1, description="Days before a dead letter's deletion its owner is warned (a dead_letter_expiring "
        "exception); a warning that came late postpones the deletion to this long after it.",
    )
    exception_ttl_days: int = 90
    fingerprint_ttl_days: int = 400
    order_document_grace_days: float = Field(
        30, gt=0, description="Days a closed or cancelled order keeps its full documents and lifecycle state after "
        "its last change (open orders keep them): the grace period in which the ERP may still change it. Then only "
        "its durable facts stay (as long as the customer): its aggregates, a credit memo read later and its audit "
        "are computed from them (docs/order-lifecycle.md, \"Released orders\"). Fractions allowed.",
    )
    order_release_batch: int = Field(
        500, ge=1, description="Orders released per run of the release sweep (bcsync.orders.release, every minute).",
    )

    # --- Poller ---------------------------------------------------------------------------------
    poller_lock_ttl_seconds: int = 30
    poll_overlap_seconds: int = 120
    poll_start: str = Field("2000-01-01 00:00:00", description="Tenant-local time the first scan starts from.")
    watermark_held_cycles: int = Field(
        10, ge=1, description="Poll cycles in a row that end with a resource's watermark held back (its window still "
        "moving, or its read failing) after which `bcsync status` shows the resource under watermarks held back.",
    )
    rescan_recent_hours: float = Field(
        24.0, ge=0,
        description="A customer the fleet holds no state for (go-live's first scan, a re-scan after Redis lost "
        "its data) whose last change is older than this is re-synced on the batch lane; newer ones are new "
        "customers or recent changes (an opt-out in flight when the state was lost) and go fast.",
    )

    # --- Freshness and lag (delivery/freshness.py; 0 turns a check off) ------------------------------
    freshness_check_seconds: float = Field(
        15.0, gt=0, description="How often beat's freshness check (on the fast lane) compares the fleet's ages, "
        "429s and budget use with the thresholds below.",
    )
    freshness_clear_after_seconds: float = Field(
        60.0, ge=0, description="A crossed threshold clears (its exception resolved) once its value has stayed back "
        "under it this long, so a value that hovers around its threshold raises one exception and one Sentry "
        "message, not one per check.",
    )
    watermark_max_age_seconds: float = Field(
        21600.0, ge=0, description="A resource's watermark (the newest Blue Cherry change handed on) older than this "
        "raises watermark_stale: the poller stopped, its reads fail, or the resource has not changed in Blue Cherry "
        "for that long (raise it for resources that change rarely, BCSYNC_WATERMARK_MAX_AGE_BY_RESOURCE).",
    )
    watermark_max_age_by_resource: dict[str, float] = Field(
        {}, description="Per-resource watermark age thresholds over watermark_max_age_seconds, "
        'as JSON, e.g. {"style": 604800, "location": 0} (0: not checked).',
    )
    poller_read_max_delay_seconds: float = Field(
        300.0, ge=0, description="A resource whose last successful read is older than its poll interval plus this "
        "raises poller_read_stale: the poller is stopped, holds no lock, or its reads of the resource fail.",
    )
    queue_age_max_fast_seconds: float = Field(
        60.0, ge=0, description="The oldest message waiting on the fast lane (or in its taking list) older than "
        "this raises lane_lagging: the fast workers are down or cannot keep up.",
    )
    queue_age_max_default_seconds: float = Field(
        600.0, ge=0, description="As queue_age_max_fast_seconds, for the default lane.")
    queue_age_max_batch_seconds: float = Field(
        3600.0, ge=0, description="As queue_age_max_fast_seconds, for the batch lane (a backfill queues a lot).")
    delayed_overdue_max_seconds: float = Field(
        120.0, ge=0, description="A delayed retry still not back on its lane this long after it was due raises "
        "delayed_overdue: no worker's drainer runs (every worker drains the schedule).",
    )
    klaviyo_429_max: int = Field(
        20, ge=0, description="More 429s than this from one Klaviyo endpoint within klaviyo_429_window_seconds "
        "raises klaviyo_throttled: another integration uses the account's quota, or the share is set too high.",
    )
    klaviyo_429_window_seconds: int = Field(
        300, ge=60, description="The window klaviyo_429_max counts 429s in (whole minutes).")
    budget_use_max: float = Field(
        0.95, ge=0, description="An endpoint whose requests this minute passed this part of the fleet's share of "
        "Klaviyo's steady limit raises budget_exhausted: its work waits for budget (a backfill does this on "
        "purpose; sustained on a fast-lane endpoint, raise the share or slow the batch lane).",
    )

    # --- Monitoring -----------------------------------------------------------------------------
    sentry_dsn: SecretStr = SecretStr("")
    sentry_environment: str = "production"
    sentry_traces_sample_rate: float = 0.0
    task_events: bool = Field(
        True, description="Celery task events (task-sent, -received, -started, -succeeded), which Flower's task view "
        "shows. On by default; off saves workers and Redis their cost on every task (docs/performance.md measures "
        "it: bench/compare.py) but Flower then lists no tasks.",
    )
    log_every_task: bool = Field(
        False, description="Celery's two INFO lines per task (\"received\", \"succeeded in\"). Off by default: "
        "at a backfill's or a busy day's rate they drown the fleet's own lines and cost the workers a few percent "
        "of their CPU; failures are logged either way.",
    )
    latency_samples: int = Field(
        200, ge=10, le=100_000, description="The latest delivery latencies each lane keeps, which `bcsync status` "
        "takes its p50/p99 from (the histogram the metrics endpoint serves counts every delivery).",
    )
    task_events_flush_seconds: float = Field(
        0.2, ge=0, description="How long a worker gathers task events before it publishes them as one message "
        "(0: Celery's own, a publish per event loop turn). Flower shows a task's events up to this much later.",
    )
    gc_young_threshold: int = Field(
        50_000, ge=0, description="Allocations between two young collections of Python's garbage collector in every "
        "bcsync process (0: Python's default, 700). Higher spends less CPU collecting (config/collector.py: 15% "
        "of a backfill's) for a little more memory held by garbage reference cycles.",
    )
    flower_port: int = 5555
    flower_address: str = Field(
        "127.0.0.1", description="Address Flower listens on: loopback unless set (0.0.0.0 inside a container whose "
        "port is published on the host's loopback, or behind a TLS reverse proxy).",
    )
    metrics_port: int = Field(9808, description="Port of the Prometheus endpoint (`bcsync metrics`, `bcsync run`).")
    metrics_address: str = Field(
        "127.0.0.1", description="Address the Prometheus endpoint listens on: loopback unless set (0.0.0.0 inside "
        "a container whose port only the scraper reaches).",
    )
    flower_user: str = "admin"
    flower_password: SecretStr = Field(
        SecretStr(""), description="Flower basic-auth password. Secret, required: `bcsync flower` refuses to start "
        "without one, with one shorter than 12 characters, or with a published example (change-me).",
    )

    # --- Operations console (`bcsync console`) ---------------------------------------------------
    console_port: int = Field(8055, description="Port of the operations console (`bcsync console`, `bcsync run`).")
    console_address: str = Field(
        "127.0.0.1", description="Address the console listens on: loopback unless set; any other address needs "
        "users (BCSYNC_CONSOLE_USERS or BCSYNC_CONSOLE_USERS_FILE), and a TLS reverse proxy in front.",
    )
    console_users: SecretStr = Field(
        SecretStr(""), description="Console users as `name:role:hash`, comma-separated; role viewer, operator or "
        "admin; hash from `bcsync console --hash-password`. Without users the console is read-only on loopback.",
    )
    console_users_file: str = Field(
        "", description="A file of console users, one `name role hash` per line (# comments); adds to "
        "BCSYNC_CONSOLE_USERS.",
    )
    console_secret: SecretStr = Field(
        SecretStr(""), description="Key that signs the console's session cookies; empty: a new random key at each "
        "start (everyone signs in again after a restart). Set it when several console processes serve together.",
    )

    # --- Demo -----------------------------------------------------------------------------------
    demo_klaviyo_port: int = 8702
    demo_bluecherry_port: int = 8701

    @model_validator(mode="after")
    def _share_max_above_the_floor(self) -> Settings:
        if self.rate_share_max < self.rate_share:
            raise ValueError("rate_share_max must be at least rate_share (the floor the share starts from)")
        return self

    @model_validator(mode="after")
    def _heartbeats_fit_the_visibility_timeout(self) -> Settings:
        # a heartbeat late by a few intervals (a Redis blip, a busy main process) must not get a live worker's
        # messages redelivered
        if self.visibility_timeout_seconds < 3 * self.unacked_heartbeat_seconds:
            raise ValueError("visibility_timeout_seconds must be at least 3 x unacked_heartbeat_seconds")
        return self

    @model_validator(mode="after")
    def _consent_settles_within_its_bound(self) -> Settings:
        # a job that can only be confirmed by the settle time must be confirmed before the bound gives up on it
        if self.consent_settle_seconds >= self.consent_confirm_seconds:
            raise ValueError("consent_settle_seconds must be less than consent_confirm_seconds")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Forget the cached settings (tests and the fleet runner change the environment)."""
    get_settings.cache_clear()
    return get_settings()
