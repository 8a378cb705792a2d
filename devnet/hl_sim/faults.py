"""Seeded fault injection for the simulator: latency, 5xx, 429, malformed and truncated bodies.

Each ``/info`` request first takes the next entry of ``script`` (if any), else draws one number
from a ``random.Random(seed)`` and picks by cumulative probability in the order 429, 5xx,
malformed, truncated. One draw per request, so a sequential client sees the same faults on every
run with the same seed::

    >>> f = Faults(FaultConfig(p_5xx=1.0))
    >>> f.draw()
    '5xx'
    >>> f.update({"script": ["429", "ok"], "p_5xx": 0.0})
    >>> f.draw(), f.draw(), f.draw()
    ('429', None, None)
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

FAULT_KINDS = ("429", "5xx", "malformed", "truncated")
SCRIPT_ENTRIES = (*FAULT_KINDS, "ok")


@dataclass(frozen=True)
class FaultConfig:
    """Fault knobs; probabilities are per ``/info`` request and must sum to at most 1."""

    latency_ms: int = 0
    p_5xx: float = 0.0
    p_429: float = 0.0
    p_malformed: float = 0.0
    p_truncated: float = 0.0
    seed: int = 0
    script: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        probs = (self.p_429, self.p_5xx, self.p_malformed, self.p_truncated)
        if any(not 0.0 <= p <= 1.0 for p in probs) or sum(probs) > 1.0 + 1e-9:
            raise ValueError(f"fault probabilities must be in [0, 1] and sum to <= 1: {probs}")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        bad = [s for s in self.script if s not in SCRIPT_ENTRIES]
        if bad:
            raise ValueError(f"unknown script entries {bad}; use {SCRIPT_ENTRIES}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "script": list(self.script)}


class Faults:
    """The live fault state of one simulator: config, seeded generator, pending script."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.config = config or FaultConfig()
        self._rng = random.Random(self.config.seed)
        self._script = list(self.config.script)
        self.injected: Counter[str] = Counter()

    def update(self, changes: dict[str, Any]) -> None:
        """Change some knobs (a ``seed`` re-seeds, a ``script`` replaces the pending one).

        Raises ``ValueError`` for an unknown knob or a bad value, changing nothing.
        """
        known = {f.name for f in fields(FaultConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown fault knobs {unknown}; known: {sorted(known)}")
        if "script" in changes:
            changes = {**changes, "script": tuple(changes["script"])}
        with self._lock:
            self.config = replace(self.config, **changes)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            if "script" in changes:
                self._script = list(self.config.script)

    def draw(self) -> str | None:
        """The fault for the next request: one of ``FAULT_KINDS``, or None."""
        with self._lock:
            if self._script:
                entry = self._script.pop(0)
                kind = None if entry == "ok" else entry
            else:
                kind = self._pick(self._rng.random())
            if kind is not None:
                self.injected[kind] += 1
            return kind

    def _pick(self, x: float) -> str | None:
        c = self.config
        for kind, p in zip(
            FAULT_KINDS, (c.p_429, c.p_5xx, c.p_malformed, c.p_truncated), strict=True
        ):
            if x < p:
                return kind
            x -= p
        return None

    def injected_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.injected)

    def reset_counts(self) -> None:
        with self._lock:
            self.injected.clear()

    @property
    def latency_s(self) -> float:
        return self.config.latency_ms / 1000
