"""Retry budget for transient failures: exponential backoff with full jitter, bounded twice.

A retry loop stops at whichever comes first: ``max_attempts`` attempts, or a wait that would end
past ``max_total_s`` since the first attempt. A server's ``Retry-After`` is honoured, capped at
``retry_after_cap_s``::

    >>> import random
    >>> policy = RetryPolicy(base_s=0.1, max_backoff_s=2.0)
    >>> 0 <= policy.backoff(3, random.Random(1)) <= 0.4
    True
    >>> policy.delay(1, random.Random(1), retry_after_s=60.0) == policy.retry_after_cap_s
    True
    >>> parse_retry_after("7")
    7.0
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to retry one request."""

    max_attempts: int = 5
    max_total_s: float = 30.0
    base_s: float = 0.25
    max_backoff_s: float = 8.0
    retry_after_cap_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_total_s < 0 or self.base_s < 0 or self.max_backoff_s < 0:
            raise ValueError("retry times must not be negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max_backoff, base * 2**(attempt-1))]."""
        ceiling = min(self.max_backoff_s, self.base_s * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)

    def delay(self, attempt: int, rng: random.Random, retry_after_s: float | None) -> float:
        """Wait after attempt ``attempt``: backoff, or the capped Retry-After if that is longer."""
        wait = self.backoff(attempt, rng)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.retry_after_cap_s))
        return wait


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    if now_s is None:
        import time

        now_s = time.time()
    return max(0.0, when - now_s)
