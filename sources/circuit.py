"""A circuit breaker for one data source: stop calling a source that keeps failing, then probe it.

Pure: no threads, no clock of its own; every call that needs time takes ``now`` in seconds.

    CLOSED --``failures`` consecutive failures--> OPEN       (every call refused)
    OPEN   --``cooldown_s`` passed--------------> HALF_OPEN  (one trial call admitted)
    HALF_OPEN --the trial succeeds--> CLOSED;  --the trial fails--> OPEN (a new cooldown)

Each admitted call gets a ``Ticket``; its result is reported with it. Results of calls admitted
before the breaker last opened are ignored, so a slow straggler cannot close or re-open it::

    >>> breaker = CircuitBreaker(failures=2, cooldown_s=30.0)
    >>> for _ in range(2):
    ...     breaker.failed(breaker.admit(now=0.0), now=0.0)
    >>> breaker.state(now=1.0), breaker.admit(now=1.0)
    (<BreakerState.OPEN: 'open'>, None)
    >>> trial = breaker.admit(now=30.0)
    >>> trial.trial, breaker.admit(now=30.0)          # one trial at a time
    (True, None)
    >>> breaker.succeeded(trial)
    >>> breaker.state(now=30.0)
    <BreakerState.CLOSED: 'closed'>
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    """Calls go through; consecutive failures are counted."""
    OPEN = "open"
    """Calls are refused until the cooldown has passed."""
    HALF_OPEN = "half_open"
    """One trial call may go; its result closes or re-opens the breaker."""


@dataclass(frozen=True)
class Ticket:
    """Permission for one call; hand it back with the call's result."""

    epoch: int
    trial: bool


class CircuitBreaker:
    """Consecutive-failure breaker with a cooldown and a single half-open trial."""

    def __init__(self, failures: int = 5, cooldown_s: float = 30.0) -> None:
        if failures < 1 or cooldown_s < 0:
            raise ValueError("failures must be at least 1 and cooldown_s not negative")
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.consecutive_failures = 0
        self.opened = 0
        """How many times the breaker has opened."""
        self._state = BreakerState.CLOSED
        self._epoch = 0
        self._opened_at = 0.0
        self._trial_out = False

    def state(self, now: float) -> BreakerState:
        """The state at ``now`` (an OPEN breaker whose cooldown passed is HALF_OPEN)."""
        if self._state is BreakerState.OPEN and now >= self._opened_at + self.cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self._trial_out = False
        return self._state

    def retry_in(self, now: float) -> float:
        """Seconds until a trial may go (0.0 unless OPEN)."""
        if self.state(now) is BreakerState.OPEN:
            return self._opened_at + self.cooldown_s - now
        return 0.0

    @property
    def trial_in_flight(self) -> bool:
        return self._state is BreakerState.HALF_OPEN and self._trial_out

    def admit(self, now: float) -> Ticket | None:
        """A ticket for one call now, or None when the breaker refuses it."""
        match self.state(now):
            case BreakerState.CLOSED:
                return Ticket(self._epoch, trial=False)
            case BreakerState.HALF_OPEN if not self._trial_out:
                self._trial_out = True
                return Ticket(self._epoch, trial=True)
            case _:
                return None

    def succeeded(self, ticket: Ticket) -> None:
        """The call answered: reset the failure count, and close after a trial."""
        if ticket.epoch != self._epoch:
            return
        self.consecutive_failures = 0
        if ticket.trial:
            self._state = BreakerState.CLOSED
            self._trial_out = False

    def failed(self, ticket: Ticket, now: float) -> None:
        """The call failed in a way worth counting (timeouts, 5xx): maybe open."""
        if ticket.epoch != self._epoch:
            return
        self.consecutive_failures += 1
        if ticket.trial or self.consecutive_failures >= self.failures:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.OPEN
        self._epoch += 1
        self._opened_at = now
        self._trial_out = False
        self.opened += 1
