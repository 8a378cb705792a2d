"""Pure evaluation of a market from Hyperliquid responses: what to fetch, and what it says.

Use::

    plan = plan(spec, now_ms)                       # the first request(s) and the rule
    pages = []                                      # the client fetches, then pages:
    for request in plan.requests:
        while request is not None:
            response = fetch(request)               # a RawResponse (not in this package)
            pages.append(response)
            request = next_page(request, response.body)
    result = evaluate(spec, pages)                  # Evaluation or EvaluationError

Semantics, exactly (DESIGN.md section 6):

* Time. Chain times are seconds, Hyperliquid's milliseconds; ``timebase.span_of`` converts, once.
  Windows are half-open: ``[t_start, t_end)``. A SNAPSHOT_AT window looks at ``t_end`` only.
* Arithmetic. Every number is read as ``Decimal`` from the response's decimal strings (an exact
  JSON number literal is accepted too, never a float). Sums are exact (``scaling.EXACT`` traps any
  rounding).
* Value. ``Evaluation.value`` is the exact measured value. It is rounded to
  ``spec.oracle.rounding_decimals`` places (round-half-even), then scaled by
  ``10**spec.subject.value_decimals`` and rounded half-even to the integer ``scaled``.
  ``outcome`` is 1 when ``spec.predicate.op.holds(scaled, spec.predicate.threshold)``, else 0.
* Subjects (``registry.REGISTRY``):

  - TOKEN_PRICE (coin) SNAPSHOT_AT: close of the candle closing at ``floor_minute(t_end)``;
  - HL_METRIC ``volume`` (coin): WINDOW_SUM sums candle ``v``, WINDOW_COUNT sums candle ``n``;
  - HL_METRIC ``funding`` (coin): SNAPSHOT_AT the latest ``fundingRate`` in the 24 h before
    ``t_end``; WINDOW_SUM the sum of ``fundingRate`` of the rows in the window; WINDOW_COUNT
    their number;
  - HL_METRIC ``open_interest`` (coin) SNAPSHOT_AT: ``openInterest`` of ``metaAndAssetCtxs``
    fetched within 5 minutes after ``t_end`` (live data only; see ``open_interest``);
  - HL_METRIC ``user_volume`` (user): WINDOW_SUM sums ``px * sz`` of ``userFillsByTime``,
    WINDOW_COUNT counts the fills; ``user_pnl`` (user) WINDOW_SUM sums ``closedPnl``.

  Any other pair is a permanent failure naming what is supported.
* Candles (``intervals``): the coarsest interval whose boundaries the window's (minute-floored)
  ends fall on and whose reachable history covers the window; every needed candle must be present.
* No data in the window, or data that stops before the window end, is a permanent failure;
  never a default. Malformed bodies, responses fetched too early and requests that fall short are
  transient failures. Every failure is an ``EvaluationError`` with its reason.
"""

from __future__ import annotations

from protocol.evaluation.engine import evaluate, plan
from protocol.evaluation.errors import EvaluationError
from protocol.evaluation.model import Evaluation, Plan
from protocol.evaluation.paging import next_page
from protocol.evaluation.registry import REGISTRY

__all__ = ["REGISTRY", "Evaluation", "EvaluationError", "Plan", "evaluate", "next_page", "plan"]
