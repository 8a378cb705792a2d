"""``plan`` what to fetch for a market, and ``evaluate`` it from the raw responses alone.

    >>> from protocol.spec import (MarketSpec, Predicate, PredicateOp, Subject, SubjectKind,
    ...                            Window, WindowKind)
    >>> spec = MarketSpec(
    ...     title="kPEPE above 0.0015",
    ...     subject=Subject(kind=SubjectKind.TOKEN_PRICE, token_identifier="kPEPE",
    ...                     value_decimals=6),
    ...     predicate=Predicate(op=PredicateOp.GT, threshold=1500),
    ...     window=Window(kind=WindowKind.SNAPSHOT_AT, t_start=1684782000, t_end=1684782000),
    ...     cutoff_time=1684700000, creator="0x0000000000000000000000000000000000000001")
    >>> p = plan(spec, now_ms=1689630204000)
    >>> p.rule["interval"], p.requests[0].body["req"]["startTime"]
    ('1h', 1684778400000)

The client fetches each planned request, follows ``next_page`` until ``None``, and passes every
page to ``evaluate(spec, responses)``, which returns an ``Evaluation`` or raises
``EvaluationError``. ``evaluate`` is a pure function of the spec and the responses' requests,
fetch times, statuses and bytes: ``proof verify`` calls it on a proof's contents.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import DecimalException, localcontext

from protocol.evaluation.errors import permanent
from protocol.evaluation.memo import MeasureMemo, responses_key
from protocol.evaluation.model import Evaluation, Plan
from protocol.evaluation.registry import method_for, subject_name
from protocol.evaluation.scaling import EXACT, scale
from protocol.evaluation.timebase import span_of
from protocol.hyperliquid import RawResponse
from protocol.spec import MarketSpec

_MEMO = MeasureMemo()
"""Measurements by method, target, span and responses (``evaluate`` is pure, so reusable)."""


def _common_rule(spec: MarketSpec, target: str) -> dict[str, str]:
    return {
        "subject": subject_name(spec.subject),
        "window": str(spec.window.kind),
        "target": target,
    }


def plan(spec: MarketSpec, now_ms: int) -> Plan:
    """The requests that answer ``spec`` as of ``now_ms`` (which bounds the reachable history)."""
    method = method_for(spec.subject, spec.window)
    target = method.target_of(spec.subject.token_identifier)
    planned = method.plan(target, span_of(spec.window), now_ms)
    return Plan(requests=planned.requests, rule={**_common_rule(spec, target), **planned.rule})


def evaluate(spec: MarketSpec, responses: Sequence[RawResponse]) -> Evaluation:
    """The value, scaled value and outcome of ``spec`` from ``responses``."""
    method = method_for(spec.subject, spec.window)
    target = method.target_of(spec.subject.token_identifier)
    try:
        span = span_of(spec.window)
        key = (method, target, span.start_ms, span.end_ms, responses_key(responses))
        with localcontext(EXACT):
            measured = _MEMO.get_or_compute(key, lambda: method.measure(target, span, responses))
        _, scaled = scale(
            measured.value,
            rounding_decimals=spec.oracle.rounding_decimals,
            value_decimals=spec.subject.value_decimals,
        )
    except DecimalException as exc:
        raise permanent(f"the value cannot be computed exactly: {exc!r}") from exc
    outcome = 1 if spec.predicate.op.holds(scaled, spec.predicate.threshold) else 0
    return Evaluation(
        value=measured.value,
        scaled=scaled,
        outcome=outcome,
        rule={**_common_rule(spec, target), **measured.rule},  # a copy: the memo keeps its own
    )
