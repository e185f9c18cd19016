"""Erasure: forget what the fleet keeps about a customer, and remember only THAT it was erased.

`purge_customer_state` drops the customer's fingerprint, daily-batch entry, delivery-ledger trail, exception
records and its orders' durable facts (`state.order_facts`). `ErasureTombstones` (Redis hash
``<prefix>:customers:erased``: customer code -> the version stamp, ``YYYY-MM-DDTHH:MM:SSZ``, of the ERP state
that was erased) holds the customer code and a time, nothing personal. It exists because forgetting the
fingerprint makes the next read of the same ERP record look new: a still-flagged record re-read inside the
overlap window would request the deletion again, and a record erased with `bcsync erase` while still in the ERP
would be re-created at once. Changes not newer than the tombstone are dropped; a newer ERP change (the ERP is
the truth) goes through as usual.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import redis

from state.daily_batch import DailyBatchStore
from state.exceptions import ExceptionRegister
from state.fingerprints import FingerprintStore
from state.keys import RedisKeys
from state.ledger import Ledger
from state.order_facts import OrderFactsStore
from state.profiles import ProfileStore
from sync.customers.erasure import version_stamp
from sync.orders.facts import customer_profile_key


class ErasureTombstones:
    def __init__(self, client: redis.Redis, key_prefix: str, ttl_days: int = 400) -> None:
        self.client = client
        self.key = RedisKeys(key_prefix).erased_customers
        self.ttl = int(ttl_days * 86400)

    def mark(self, code: str, stamp: str) -> None:
        """Remember the erasure (keeping the newest stamp when erased twice)."""
        current = self.client.hget(self.key, code)
        if current is None or str(current) < stamp:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(self.key, code, stamp)
            pipe.expire(self.key, self.ttl)
            pipe.execute()

    def stamps(self, codes: Iterable[str]) -> dict[str, str]:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        values = self.client.hmget(self.key, wanted)
        return {code: str(v) for code, v in zip(wanted, values, strict=True) if v is not None}

    def erased(self, code: str, version: str) -> bool:
        """True when a change with `version` is not newer than the customer's erasure."""
        stamp = self.stamps([code]).get(code)
        return stamp is not None and version_stamp(version) <= stamp


@dataclass
class PurgeReport:
    fingerprint: bool = False
    daily_entry: bool = False
    ledger_entries: int = 0
    exceptions: int = 0
    order_facts: int = 0  # orders whose durable facts were dropped
    profile: bool = False  # the Klaviyo profile's id and the identifiers Klaviyo held

    @property
    def empty(self) -> bool:
        return not (self.fingerprint or self.daily_entry or self.ledger_entries or self.exceptions
                    or self.order_facts or self.profile)


def customer_state(
    client: redis.Redis,
    key_prefix: str,
    code: str,
    record_key: str | None,
    exceptions: ExceptionRegister,
) -> PurgeReport:
    """What `purge_customer_state` would drop for customer `code`, counted, nothing deleted (a dry run)."""
    pipe = client.pipeline(transaction=False)
    pipe.hexists(DailyBatchStore(client, key_prefix).key, code)
    pipe.hexists(FingerprintStore(client, key_prefix).key("customer"), record_key or "")
    pipe.scard(Ledger(client, key_prefix).index_prefix + f"customer:{code}")
    pipe.exists(RedisKeys(key_prefix).profile(code))
    pipe.hlen(OrderFactsStore(client, key_prefix).key(customer_profile_key(code)))
    daily, fingerprint, ledger, profile, facts = pipe.execute()
    return PurgeReport(fingerprint=bool(record_key) and bool(fingerprint), daily_entry=bool(daily),
                       ledger_entries=int(ledger), exceptions=len(_exception_idents(client, exceptions,
                                                                                     f"customer:{code}")),
                       order_facts=int(facts), profile=bool(profile))


def purge_customer_state(
    client: redis.Redis,
    key_prefix: str,
    code: str,
    record_key: str | None,
    exceptions: ExceptionRegister,
) -> PurgeReport:
    """Drop the fleet's own state for customer `code` (`record_key` = its ERP pkey, for the fingerprint)."""
    report = PurgeReport()
    daily = DailyBatchStore(client, key_prefix)
    report.daily_entry = bool(client.hexists(daily.key, code))
    daily.discard(code)
    if record_key:
        fingerprints = FingerprintStore(client, key_prefix)
        report.fingerprint = bool(client.hexists(fingerprints.key("customer"), record_key))
        fingerprints.forget("customer", record_key)
    report.ledger_entries = Ledger(client, key_prefix).forget_record(f"customer:{code}")
    report.profile = bool(client.exists(RedisKeys(key_prefix).profile(code)))
    ProfileStore(client, key_prefix).forget(code)  # its Klaviyo id and the email / phone Klaviyo held
    # its orders' facts are kept for as long as the customer: its erasure is their end
    report.order_facts = OrderFactsStore(client, key_prefix).forget(customer_profile_key(code))
    report.exceptions = _forget_exceptions(client, exceptions, f"customer:{code}")
    return report


def _forget_exceptions(client: redis.Redis, register: ExceptionRegister, record_key: str) -> int:
    """Every exception about `record_key`, whatever its type."""
    idents = _exception_idents(client, register, record_key)
    if not idents:
        return 0
    pipe = client.pipeline(transaction=False)
    pipe.delete(*[register.item_prefix + ident for ident in idents])
    pipe.zrem(register.index, *idents)
    pipe.execute()
    return len(idents)


def _exception_idents(client: redis.Redis, register: ExceptionRegister, record_key: str) -> list[str]:
    """The register's idents (``<type>|<record key>``) of the exceptions about `record_key`."""
    suffix = f"|{record_key}"
    members = (m.decode() if isinstance(m, bytes) else str(m) for m, _ in client.zscan_iter(register.index))
    return [ident for ident in members if ident.endswith(suffix)]
