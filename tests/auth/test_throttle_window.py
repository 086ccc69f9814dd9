"""The sliding windows of `LoginThrottle` and `SlidingWindowCounter`, driven by a fake clock
(no server needed)."""

from __future__ import annotations

from auth_service.throttle import LoginThrottle, SlidingWindowCounter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refuses_after_max_failures_until_the_oldest_leaves_the_window() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, window=60, clock=clock)
    for offset in (0, 10, 20):
        clock.now = 1000 + offset
        assert throttle.retry_after("alice", "10.0.0.1") == 0
        throttle.record_failure("alice", "10.0.0.1")
    assert throttle.retry_after("alice", "10.0.0.1") == 40  # first failure leaves at 1060
    assert throttle.retry_after("ALICE", "10.0.0.1") == 40  # same budget in any case
    assert throttle.retry_after("alice", "10.0.0.2") == 0  # another address
    assert throttle.retry_after("bob", "10.0.0.1") == 0  # another user
    clock.now = 1060
    assert throttle.retry_after("alice", "10.0.0.1") == 0
    throttle.record_failure("alice", "10.0.0.1")  # 3 in (1000, 1060]: refused again
    assert throttle.retry_after("alice", "10.0.0.1") == 10


def test_success_clears_and_old_failures_are_forgotten() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=2, window=30, clock=clock)
    throttle.record_failure("carol", "::1")
    throttle.record_failure("carol", "::1")
    assert throttle.retry_after("carol", "::1") > 0
    throttle.record_success("carol", "::1")
    assert throttle.retry_after("carol", "::1") == 0
    throttle.record_failure("dave", "::1")
    clock.now += 31
    throttle.record_failure("dave", "::1")
    assert throttle.retry_after("dave", "::1") == 0  # the first one has expired


def test_failures_per_address_count_whatever_the_usernames() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, window=60, max_per_address=5, clock=clock)
    for number in range(5):
        assert throttle.retry_after(f"user{number}", "10.0.0.1") == 0
        throttle.record_failure(f"user{number}", "10.0.0.1")
        clock.now += 1
    assert throttle.retry_after("anyone", "10.0.0.1") == 55  # the first leaves at 1060
    assert throttle.retry_after("anyone", "10.0.0.2") == 0


def test_a_success_or_a_take_back_uncounts_the_attempt_at_the_address() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(max_failures=3, window=60, max_per_address=2, clock=clock)
    stamp = throttle.record_failure("alice", "::1")
    throttle.record_success("alice", "::1", stamp)  # it was no failure after all
    stamp = throttle.record_failure("bob", "::1")
    throttle.take_back("bob", "::1", stamp)  # never checked (the server was busy)
    throttle.record_failure("carol", "::1")
    assert throttle.retry_after("dave", "::1") == 0  # only carol's failure counts
    throttle.record_failure("erin", "::1")
    assert throttle.retry_after("dave", "::1") == 60


def test_a_limit_of_zero_counts_nothing() -> None:
    clock = FakeClock()
    registrations: SlidingWindowCounter[str] = SlidingWindowCounter(0, 3600, clock)
    for _ in range(1000):
        registrations.add("10.0.0.1")
    assert registrations.retry_after("10.0.0.1") == 0
    throttle = LoginThrottle(max_failures=3, window=60, max_per_address=0, clock=clock)
    for number in range(100):
        throttle.record_failure(f"user{number}", "10.0.0.1")
    assert throttle.retry_after("someone", "10.0.0.1") == 0
    # LOGIN_MAX_FAILURES=0 turns the per-username limit off the same way.
    unlimited = LoginThrottle(max_failures=0, window=60, clock=clock)
    for _ in range(100):
        unlimited.record_failure("alice", "10.0.0.1")
    assert unlimited.retry_after("alice", "10.0.0.1") == 0
