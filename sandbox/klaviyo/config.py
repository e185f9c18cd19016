"""Start-up settings of the Klaviyo sandbox: rate-limit scaling, recording and the initial faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ERROR_STATUSES = (500, 502, 503, 504)
INVALID_PHONE_MODES = ("refuse", "drop")


@dataclass
class FaultSettings:
    """What the sandbox breaks on purpose. Every field is documented in docs/sandbox.md (Faults)."""

    error_rates: dict[int, float] = field(default_factory=dict)  # status -> probability per request
    latency_ms: float = 0.0  # added before every API request is handled
    outage_seconds: float = 0.0  # every API request answers 503 for this long (counted from when set)
    drop_rate: float = 0.0  # probability that the connection is closed without any response
    slow_rate: float = 0.0  # probability that a (processed) response is held back for slow_seconds
    slow_seconds: float = 30.0
    long_throttle_endpoint: str | None = None  # e.g. "POST /api/events": 429 with a Retry-After of hours
    long_throttle_seconds: int = 67608
    other_integration_share: float = 0.0  # fraction of every rate-limit window already used by someone else
    # another integration on the account taking this part of every window, spread evenly over it (a busy one
    # catches up on its part whenever the window has room); set to 0 and it stops
    background_share: float = 0.0
    # Klaviyo's windows start this many seconds after the epoch's seconds and minutes (0 <= phase < 60): its
    # minute is not the fleet's
    window_phase_seconds: float = 0.0
    throttle_rate: float = 0.0  # a 429 storm: probability per request of a Klaviyo 429 `throttled`
    throttle_retry_after: int = 30  # the storm's Retry-After seconds
    endpoints: list[str] | None = None  # restrict error/latency/drop/throttle/slow faults to these keys; None = all
    # Klaviyo-shaped 4xx refusals of every request to an endpoint, until lifted: a "permanent" error whose
    # cause an operator can fix (e.g. {"endpoint": "POST /api/profile-import", "status": 400,
    # "code": "invalid", "detail": "...", "pointer": "/data/attributes/phone_number"}).
    reject_rules: list[dict[str, Any]] = field(default_factory=list)
    seed: int | None = None  # seed for the fault dice, for reproducible runs
    # A phone number Klaviyo cannot validate: "refuse" answers 400 at its pointer; "drop" ignores the phone
    # when the profile has another identifier and answers with `X-Klaviyo-Partial-Failure: phone_number`
    # (Klaviyo's announced behaviour, see docs/sandbox.md "Identity resolution").
    invalid_phone: str = "refuse"
    # How long a profile bulk import job stays "processing"; None: one job step, like every other job.
    profile_job_seconds: float | None = None
    # Subscription jobs (bulk create and delete) applied late and out of order, as Klaviyo may (it applies them
    # asynchronously and shows no status): each is applied no sooner than `consent_job_delay_seconds` after it
    # was accepted, plus its own random [0, consent_job_jitter_seconds) drawn from the fault dice on
    # acceptance; `consent_job_reverse` applies pending ones newest first.
    consent_job_delay_seconds: float = 0.0
    consent_job_jitter_seconds: float = 0.0
    consent_job_reverse: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rates": {str(status): rate for status, rate in sorted(self.error_rates.items())},
            "latency_ms": self.latency_ms,
            "outage_seconds": self.outage_seconds,
            "drop_rate": self.drop_rate,
            "slow_rate": self.slow_rate,
            "slow_seconds": self.slow_seconds,
            "long_throttle_endpoint": self.long_throttle_endpoint,
            "long_throttle_seconds": self.long_throttle_seconds,
            "other_integration_share": self.other_integration_share,
            "background_share": self.background_share,
            "window_phase_seconds": self.window_phase_seconds,
            "throttle_rate": self.throttle_rate,
            "throttle_retry_after": self.throttle_retry_after,
            "endpoints": self.endpoints,
            "reject_rules": [dict(rule) for rule in self.reject_rules],
            "seed": self.seed,
            "invalid_phone": self.invalid_phone,
            "profile_job_seconds": self.profile_job_seconds,
            "consent_job_delay_seconds": self.consent_job_delay_seconds,
            "consent_job_jitter_seconds": self.consent_job_jitter_seconds,
            "consent_job_reverse": self.consent_job_reverse,
        }

    def merged(self, changes: dict[str, Any]) -> FaultSettings:
        """A copy with the given JSON keys replaced; raises ValueError naming a bad key or value."""
        current = self.to_json()
        unknown = sorted(set(changes) - set(current))
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)}; known: {', '.join(current)}")
        current.update(changes)
        return FaultSettings.from_json(current)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultSettings:
        try:
            rates = {int(status): float(rate) for status, rate in (data.get("error_rates") or {}).items()}
            settings = cls(
                error_rates=rates,
                latency_ms=float(data.get("latency_ms", 0.0)),
                outage_seconds=float(data.get("outage_seconds", 0.0)),
                drop_rate=float(data.get("drop_rate", 0.0)),
                slow_rate=float(data.get("slow_rate", 0.0)),
                slow_seconds=float(data.get("slow_seconds", 30.0)),
                long_throttle_endpoint=data.get("long_throttle_endpoint"),
                long_throttle_seconds=int(data.get("long_throttle_seconds", 67608)),
                other_integration_share=float(data.get("other_integration_share", 0.0)),
                background_share=float(data.get("background_share", 0.0)),
                window_phase_seconds=float(data.get("window_phase_seconds", 0.0)),
                throttle_rate=float(data.get("throttle_rate", 0.0)),
                throttle_retry_after=_whole(data.get("throttle_retry_after", 30), "throttle_retry_after"),
                endpoints=list(data["endpoints"]) if data.get("endpoints") is not None else None,
                reject_rules=[dict(rule) for rule in data.get("reject_rules") or []],
                seed=int(data["seed"]) if data.get("seed") is not None else None,
                invalid_phone=str(data.get("invalid_phone", "refuse")),
                profile_job_seconds=(
                    float(data["profile_job_seconds"]) if data.get("profile_job_seconds") is not None else None
                ),
                consent_job_delay_seconds=float(data.get("consent_job_delay_seconds", 0.0)),
                consent_job_jitter_seconds=float(data.get("consent_job_jitter_seconds", 0.0)),
                consent_job_reverse=_flag(data.get("consent_job_reverse", False), "consent_job_reverse"),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid fault settings: {exc}") from exc
        settings.check()
        return settings

    def check(self) -> None:
        for status, rate in self.error_rates.items():
            if status not in ERROR_STATUSES:
                raise ValueError(f"error_rates: status {status} is not one of {ERROR_STATUSES}")
            _check_probability(f"error_rates[{status}]", rate)
        if sum(self.error_rates.values()) > 1.0:
            raise ValueError("error_rates: the rates add up to more than 1")
        _check_probability("drop_rate", self.drop_rate)
        _check_probability("slow_rate", self.slow_rate)
        _check_probability("throttle_rate", self.throttle_rate)
        if not 0.0 <= self.other_integration_share < 1.0:
            raise ValueError("other_integration_share must be in [0, 1)")
        if not 0.0 <= self.background_share < 1.0:
            raise ValueError("background_share must be in [0, 1)")
        if not 0.0 <= self.window_phase_seconds < 60.0:
            raise ValueError("window_phase_seconds must be in [0, 60)")
        for rule in self.reject_rules:
            _check_reject_rule(rule)
        for name in (
            "latency_ms",
            "outage_seconds",
            "slow_seconds",
            "long_throttle_seconds",
            "throttle_retry_after",
            "consent_job_delay_seconds",
            "consent_job_jitter_seconds",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.invalid_phone not in INVALID_PHONE_MODES:
            raise ValueError(f"invalid_phone must be one of {INVALID_PHONE_MODES}, got {self.invalid_phone!r}")
        if self.profile_job_seconds is not None and self.profile_job_seconds < 0:
            raise ValueError("profile_job_seconds must not be negative")


def _check_reject_rule(rule: dict[str, Any]) -> None:
    if not isinstance(rule.get("endpoint"), str):
        raise ValueError("reject_rules: every rule needs an 'endpoint' like 'POST /api/profile-import'")
    status = rule.get("status", 400)
    if not isinstance(status, int) or not 400 <= status < 500 or status == 429:
        raise ValueError(f"reject_rules: status {status!r} must be a 4xx other than 429")
    unknown = set(rule) - {"endpoint", "status", "code", "detail", "pointer"}
    if unknown:
        raise ValueError(f"reject_rules: unknown rule key(s) {sorted(unknown)}")


def _whole(value: Any, name: str) -> int:
    """An integer setting: 30 or 30.0, never 29.5 (Retry-After is whole seconds) nor true."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValueError(f"{name} must be a whole number of seconds, got {value!r}")
    return int(value)


def _flag(value: Any, name: str) -> bool:
    """A JSON boolean: "false" or 0 would silently mean something else."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")


@dataclass
class KlaviyoSandboxConfig:
    rate_limit_scale: float = 1.0  # every tier number is multiplied by this, rounded up, at least 1
    rate_limits_enabled: bool = True
    record_path: Path | None = None  # one JSON line per request when set
    faults: FaultSettings = field(default_factory=FaultSettings)
    api_key: str | None = None  # when set, only this private key is accepted (else any `pk_...`)
    job_step_seconds: float = 0.15  # bulk jobs move queued -> processing -> complete one step per this
    seed: int = 0  # seed for generated ids, so runs are reproducible

    def __post_init__(self) -> None:
        if self.rate_limit_scale <= 0:
            raise ValueError("rate_limit_scale must be positive")
        self.faults.check()
