"""The auth service's metrics: logins, registrations, throttle hits, the password-hash queue.

Bound to their labels once per process (`AuthMetrics`); with METRICS_ENABLED false every
one is `OFF` and records nothing. Names and meanings: docs/operations.md#metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS, OFF, CounterLike, GaugeLike, HistogramLike

LOGINS = Counter(
    "auth_logins_total",
    "Login attempts by outcome: success, invalid_credentials, throttled (429), busy (503).",
    ["outcome"],
)
REGISTRATIONS = Counter(
    "auth_registrations_total",
    "Registrations by outcome: created, username_taken, throttled (429), busy (503).",
    ["outcome"],
)
THROTTLE_HITS = Counter(
    "auth_throttle_hits_total",
    "Attempts refused with 429 too_many_attempts, by action: login, register.",
    ["action"],
)
HASHES_WAITING = Gauge(
    "auth_password_hashes_waiting",
    "Password hashes queued for a hashing thread (the queue HASH_QUEUE_MAX bounds).",
    multiprocess_mode="livesum",
)
HASHES_RUNNING = Gauge(
    "auth_password_hashes_running",
    "Password hashes being computed by a hashing thread now.",
    multiprocess_mode="livesum",
)
HASH_SECONDS = Histogram(
    "auth_password_hash_seconds",
    "Time one argon2 hash or verification takes in its thread (queueing excluded).",
    buckets=LATENCY_BUCKETS,
)


@dataclass(frozen=True, slots=True)
class AuthMetrics:
    """The auth service's metrics, each bound to its labels (or `OFF`)."""

    login_success: CounterLike = OFF
    login_invalid: CounterLike = OFF
    login_throttled: CounterLike = OFF
    login_busy: CounterLike = OFF
    register_created: CounterLike = OFF
    register_taken: CounterLike = OFF
    register_throttled: CounterLike = OFF
    register_busy: CounterLike = OFF
    throttled_login: CounterLike = OFF
    throttled_register: CounterLike = OFF
    hashes_waiting: GaugeLike = OFF
    hashes_running: GaugeLike = OFF
    hash_seconds: HistogramLike = OFF

    @classmethod
    def build(cls, enabled: bool) -> AuthMetrics:
        """Bound metrics when `enabled`, else one that records nothing."""
        if not enabled:
            return cls()
        return cls(
            login_success=LOGINS.labels("success"),
            login_invalid=LOGINS.labels("invalid_credentials"),
            login_throttled=LOGINS.labels("throttled"),
            login_busy=LOGINS.labels("busy"),
            register_created=REGISTRATIONS.labels("created"),
            register_taken=REGISTRATIONS.labels("username_taken"),
            register_throttled=REGISTRATIONS.labels("throttled"),
            register_busy=REGISTRATIONS.labels("busy"),
            throttled_login=THROTTLE_HITS.labels("login"),
            throttled_register=THROTTLE_HITS.labels("register"),
            hashes_waiting=HASHES_WAITING,
            hashes_running=HASHES_RUNNING,
            hash_seconds=HASH_SECONDS,
        )
