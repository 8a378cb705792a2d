"""What planning and evaluation produce, and the shape of one registry entry.

>>> from decimal import Decimal
>>> Evaluation(value=Decimal("0.001539"), scaled=1539, outcome=1, rule={"interval": "1h"}).outcome
1
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, Protocol

from protocol.evaluation.timebase import Span
from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.spec import Frozen


class Plan(Frozen):
    """The first request of each series to fetch (follow each with ``next_page``), and the rule."""

    requests: tuple[InfoRequest, ...]
    rule: dict[str, str]


class Evaluation(Frozen):
    """The measured value (exact), its scaled integer, the outcome and how they were obtained."""

    value: Decimal
    scaled: int
    outcome: Literal[0, 1]
    rule: dict[str, str]


@dataclass(frozen=True)
class Measurement:
    """What a registry entry measures from the responses: the exact value and its rule."""

    value: Decimal
    rule: dict[str, str]


class Method(Protocol):
    """One registry entry: how a (subject, window kind) pair is fetched and measured.

    ``target`` is the subject's coin or user, already normalised by ``target_of``.
    """

    @property
    def name(self) -> str: ...

    def target_of(self, token_identifier: str) -> str: ...

    def plan(self, target: str, span: Span, now_ms: int) -> Plan: ...

    def measure(self, target: str, span: Span, responses: Sequence[RawResponse]) -> Measurement: ...
