"""Every Redis key the fleet writes, in one place: `RedisKeys(prefix)` names each of them.

All keys live under one prefix (``BCSYNC_KEY_PREFIX``), so tenants and tests can share a Redis. The stores of
`state/` take their keys from here; the stock and order stores own the sub-keys of their namespace
(``<prefix>:stock:...``, ``<prefix>:orders:...``; their module docstrings list them). Celery's own keys (the
broker's queues, RedBeat's schedule) are named by `config.celery`, and the Klaviyo rate limiter's windows
(``<prefix>:rl:...``) by `connectors.klaviyo.limiter`; they are listed here for operators' tools.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.redis import broker_key_prefix, taking_key


@dataclass(frozen=True)
class RedisKeys:
    prefix: str

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # --- delivery: ledger, dead letters, delayed-retry schedule, lane statistics ----------------------
    def ledger(self, operation_key: str) -> str:
        return self._key("ledger", operation_key)

    def ledger_index(self, record: str) -> str:
        return self._key("ledger-index", record)

    def dead_letters(self, lane: str) -> str:
        return self._key("dlq", lane)

    def dead_letter(self, entry_id: str) -> str:
        return self._key("dlq-entry", entry_id)

    @property
    def dead_letter_sweep(self) -> str:
        return self._key("dlq-sweep")  # the retention sweep's once-per-interval gate (expires by itself)

    @property
    def console_audit(self) -> str:
        return self._key("console", "audit")  # every change made in `bcsync console` (state/console_audit.py)

    @property
    def reconcile_last(self) -> str:
        return self._key("reconcile", "last")  # the last reconciliation's summary (state/reconcile_summary.py)

    @property
    def delayed_due(self) -> str:
        return self._key("delayed", "due")

    @property
    def delayed_inflight(self) -> str:
        return self._key("delayed", "inflight")

    @property
    def delayed_payload(self) -> str:
        return self._key("delayed", "payload")

    @property
    def delivered_counts(self) -> str:
        return self._key("stats", "delivered")

    def latencies(self, lane: str) -> str:
        return self._key("stats", "latency", lane)

    @property
    def delivery_outcomes(self) -> str:
        return self._key("stats", "outcomes")  # hash "lane|kind|outcome" -> operations (state/lane_stats.py)

    def latency_histogram(self, lane: str) -> str:
        return self._key("stats", "latency-hist", lane)  # hash bucket upper bound | sum | count -> value

    @property
    def throttled_counts(self) -> str:
        return self._key("stats", "throttled")  # hash endpoint -> Klaviyo 429s ever (state/throttles.py)

    def throttled_minute(self, minute: int) -> str:
        return self._key("stats", "throttled", str(minute))  # hash endpoint -> 429s in that epoch minute

    @property
    def freshness_crossings(self) -> str:
        return self._key("freshness", "crossed")  # hash "check|subject" -> JSON crossing (state/freshness.py)

    def task_run(self, message_id: str) -> str:
        return self._key("task-run", message_id)

    def task_run_attempts(self, message_id: str) -> str:
        return self._key("task-run", message_id, "attempts")

    @property
    def inflight_operations(self) -> str:
        return self._key("inflight", "ops")

    # --- beat: the schedule's heartbeat ----------------------------------------------------------------
    @property
    def beat_last_tick(self) -> str:
        return self._key("beat", "last-tick")

    # --- buffers: claims of work taken out of a buffer until it is published (state/claims.py) --------
    @property
    def claims(self) -> str:
        return self._key("claims")

    def claim(self, claim_id: str) -> str:
        return self._key("claim", claim_id)

    def claim_meta(self, claim_id: str) -> str:
        return self._key("claim", claim_id, "meta")

    @staticmethod
    def buffer_since(buffer: str) -> str:
        """When the buffer `buffer` (a full key) last became non-empty (epoch seconds)."""
        return f"{buffer}:since"

    @property
    def klaviyo_outage_since(self) -> str:
        return self._key("outage", "since")

    @property
    def klaviyo_outage_waiting(self) -> str:
        return self._key("outage", "waiting")

    @property
    def klaviyo_outage_probe(self) -> str:
        return self._key("outage", "probe")

    @property
    def watchdog_gate(self) -> str:
        return self._key("watchdog", "gate")

    # --- reading Blue Cherry: fingerprints, watermarks, the poller's lock, CSV drops ------------------
    def fingerprints(self, resource: str) -> str:
        return self._key("fp", resource)

    @property
    def watermarks(self) -> str:
        return self._key("watermarks")

    @property
    def poller_lock(self) -> str:
        return self._key("poller", "lock")

    @property
    def poller_health(self) -> str:
        return self._key("poller", "health")

    @property
    def csv_drops(self) -> str:
        return self._key("csvdrop") + ":"  # the tracker appends file names

    # --- operators: the exception register -------------------------------------------------------------
    @property
    def exceptions(self) -> str:
        return self._key("exceptions")

    def exception(self, ident: str) -> str:
        return self._key("exception", ident)

    # --- customers -------------------------------------------------------------------------------------
    @property
    def daily_batch(self) -> str:
        return self._key("customers", "daily")

    def daily_batch_ran(self, local_date: str) -> str:
        return self._key("customers", "daily-ran", local_date)

    def profile(self, customer_code: str) -> str:
        return self._key("profile", customer_code)  # the Klaviyo profile's id, identifiers, field versions

    def profile_lease(self, customer_code: str) -> str:
        return self._key("profile-lease", customer_code)  # one profile write per customer at a time

    def consent_job(self, operation_key: str) -> str:
        return self._key("consent-job", operation_key)  # the one consent job in flight per customer and channel

    @property
    def erased_customers(self) -> str:
        return self._key("customers", "erased")

    # --- orders ----------------------------------------------------------------------------------------
    @property
    def orders(self) -> str:
        return self._key("orders")

    def order_bulk_window(self, resource: str) -> str:
        return self._key("orders", "window", resource)

    @property
    def order_bulk_buffer(self) -> str:
        return self._key("orders", "bulk")

    @property
    def backfill_bulk_buffer(self) -> str:
        return self._key("backfill", "orders", "bulk")

    @property
    def orders_closing(self) -> str:
        # sorted set: closed or cancelled order number -> when its documents are released (state.orders)
        return self._key("orders", "closing")

    def orders_released(self, bucket: int) -> str:
        # hash per bucket: released order number -> its profile key, where its facts are (state.orders)
        return self._key("order-released", str(bucket))

    def order_facts(self, profile_key: str) -> str:
        # one hash per profile (order number -> facts), no expiry: outside `orders:`, whose keys expire
        return self._key("order-facts", profile_key)

    @property
    def refunds_all_recorded(self) -> str:
        # the refund metric Klaviyo held no event of while the order facts were kept (state.order_facts)
        return self._key("refunds-recorded")

    @property
    def refunds_recorded_generation(self) -> str:
        # counts what voided that mark: a mark decided before a void is not set (state.order_facts)
        return self._key("refunds-recorded", "generation")

    # --- stock and catalog -----------------------------------------------------------------------------
    @property
    def stock(self) -> str:
        return self._key("stock") + ":"

    # --- backfills -------------------------------------------------------------------------------------
    @property
    def customer_backfill(self) -> str:
        return self._key("backfill", "customers")

    def order_backfill(self, resource: str) -> str:
        return self._key("backfill", "orders", resource)

    @property
    def backfill_profiles_touched(self) -> str:
        return self._key("backfill", "orders", "profile-keys")

    # --- Celery's and the rate limiter's keys, for operators' tools ------------------------------------
    def queue(self, lane: str) -> str:
        return broker_key_prefix(self.prefix) + lane

    def queue_taking(self, lane: str) -> str:
        """A lane's taking list: messages a consumer took and has not yet recorded (state/broker_transport.py)."""
        return taking_key(self.queue(lane))

    @property
    def broker_unacked(self) -> str:
        """kombu's hash of unacknowledged messages (`Channel.unacked_key`): tag -> [payload, exchange, lane]."""
        return broker_key_prefix(self.prefix) + "unacked"

    @property
    def broker_unacked_index(self) -> str:
        """kombu's sorted set tag -> when last vouched for (`Channel.unacked_index_key`; see state/unacked.py)."""
        return broker_key_prefix(self.prefix) + "unacked_index"

    @property
    def unacked_taken(self) -> str:
        """The fleet's own hash: tag of an unacknowledged message -> when its current holder took it."""
        return self._key("unacked", "taken")

    @property
    def everything(self) -> str:
        """The pattern of every key of this prefix (the demo clears its own state with it)."""
        return self._key("*")
