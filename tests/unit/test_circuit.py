"""The circuit breaker: opens on consecutive failures, cools down, one half-open trial decides.

Time is passed in explicitly (seconds); no sleeps.
"""

from __future__ import annotations

import pytest

from sources.circuit import BreakerState, CircuitBreaker, Ticket

pytestmark = pytest.mark.timeout(30)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def admit(breaker: CircuitBreaker, now: float) -> Ticket:
    ticket = breaker.admit(now)
    assert ticket is not None, f"refused at {now} in state {breaker.state(now)}"
    return ticket


def fail_n(breaker: CircuitBreaker, n: int, now: float) -> None:
    for _ in range(n):
        breaker.failed(admit(breaker, now), now)


def test_opens_after_n_consecutive_failures_not_before() -> None:
    breaker = CircuitBreaker(failures=3, cooldown_s=30.0)
    fail_n(breaker, 2, now=0.0)
    assert breaker.state(0.0) is CLOSED and breaker.consecutive_failures == 2
    breaker.succeeded(admit(breaker, 1.0))  # a success in between starts the count again
    fail_n(breaker, 2, now=2.0)
    assert breaker.state(2.0) is CLOSED
    fail_n(breaker, 1, now=3.0)
    assert breaker.state(3.0) is OPEN and breaker.opened == 1
    assert breaker.admit(3.0) is None


def test_open_refuses_until_the_cooldown_has_passed() -> None:
    breaker = CircuitBreaker(failures=1, cooldown_s=30.0)
    fail_n(breaker, 1, now=100.0)
    assert breaker.retry_in(110.0) == 20.0
    assert breaker.admit(129.999) is None
    assert breaker.state(130.0) is HALF_OPEN and breaker.retry_in(130.0) == 0.0


def test_one_trial_at_a_time_and_its_success_closes() -> None:
    breaker = CircuitBreaker(failures=1, cooldown_s=30.0)
    fail_n(breaker, 1, now=0.0)
    trial = admit(breaker, 30.0)
    assert trial.trial and breaker.trial_in_flight
    assert breaker.admit(31.0) is None  # the trial is out: nobody else goes
    breaker.succeeded(trial)
    assert breaker.state(31.0) is CLOSED and breaker.consecutive_failures == 0
    assert not admit(breaker, 31.0).trial


def test_a_failed_trial_opens_again_for_a_full_cooldown() -> None:
    breaker = CircuitBreaker(failures=5, cooldown_s=30.0)
    fail_n(breaker, 5, now=0.0)
    trial = admit(breaker, 40.0)
    breaker.failed(trial, now=45.0)  # one failure is enough in half-open
    assert breaker.state(45.0) is OPEN and breaker.opened == 2
    assert breaker.retry_in(45.0) == 30.0
    assert breaker.state(75.0) is HALF_OPEN


def test_results_of_calls_from_before_the_breaker_opened_are_ignored() -> None:
    breaker = CircuitBreaker(failures=1, cooldown_s=30.0)
    early, late = admit(breaker, 0.0), admit(breaker, 0.0)  # slow calls, out when it opens
    fail_n(breaker, 1, now=1.0)
    assert breaker.state(1.0) is OPEN
    breaker.failed(early, now=2.0)  # must not extend the cooldown
    assert breaker.state(31.0) is HALF_OPEN
    trial = admit(breaker, 31.0)
    breaker.failed(late, now=32.0)  # must not re-open during the trial
    assert breaker.state(32.0) is HALF_OPEN and breaker.trial_in_flight
    breaker.succeeded(trial)
    assert breaker.state(32.0) is CLOSED
    assert breaker.opened == 1


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failures=0)
    with pytest.raises(ValueError):
        CircuitBreaker(cooldown_s=-1)
