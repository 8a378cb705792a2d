"""Seeded fault injection: crash, delay, drop or stop actors on chosen messages.

    >>> from protocol.supervision import FaultAction, FaultRule
    >>> plan = FaultPlan([FaultRule(actor="resolver:*", message="tx_confirmed",
    ...                             action=FaultAction.RAISE, times=2)], seed=7)
    >>> plan.decide("resolver:hyperevm:0xabc", "tx_confirmed").action
    <FaultAction.RAISE: 'raise'>
    >>> plan.decide("scheduler", "tx_confirmed") is None
    True

The same seed and the same sequence of messages fire the same faults; ``fired`` records each one.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from fnmatch import fnmatchcase

from protocol.supervision import FaultRule


@dataclass(frozen=True)
class Fired:
    actor: str
    message: str
    rule: FaultRule


class FaultPlan:
    """A list of rules, consulted by every supervised actor before it handles a message."""

    def __init__(self, rules: list[FaultRule] | None = None, seed: int = 0) -> None:
        self._rules: list[FaultRule] = list(rules or [])
        self._seen: list[int] = [0] * len(self._rules)
        self._fired_count: list[int] = [0] * len(self._rules)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.fired: list[Fired] = []

    def add(self, rule: FaultRule) -> None:
        """Add a rule while the tree runs (the REPL's ``inject``)."""
        with self._lock:
            self._rules.append(rule)
            self._seen.append(0)
            self._fired_count.append(0)

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def decide(self, actor: str, message: str) -> FaultRule | None:
        """The rule that fires for this actor and message kind now, if any."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not (fnmatchcase(actor, rule.actor) and fnmatchcase(message, rule.message)):
                    continue
                if rule.times is not None and self._fired_count[index] >= rule.times:
                    continue
                self._seen[index] += 1
                if self._seen[index] <= rule.skip:
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                self._fired_count[index] += 1
                self.fired.append(Fired(actor, message, rule))
                return rule
            return None
