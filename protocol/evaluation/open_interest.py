"""Open interest at an instant: live data only, so it must be observed right at the window end.

    >>> from protocol.evaluation.timebase import Span
    >>> OPEN_INTEREST.plan("BTC", Span(0, 60_000), now_ms=60_000).requests[0].body
    {'type': 'metaAndAssetCtxs'}

Hyperliquid has no history of open interest: ``metaAndAssetCtxs`` answers ``[meta, ctxs]`` with
``meta.universe[i].name`` naming the coin of ``ctxs[i]`` and ``ctxs[i].openInterest`` its open
interest now, in coins. The rule: the response used is the earliest one whose ``fetched_at_ms`` lies
in ``[end_ms, end_ms + MAX_LAG_MS]``. Only responses fetched before ``end_ms``: transient (too
early). None in that range but some later: permanent (the moment has passed). ``plan`` refuses
at once, permanently, when ``now_ms`` is already past ``end_ms + MAX_LAG_MS``. The settle delay of
such markets must therefore stay well under ``MAX_LAG_MS``. A verifier has to take the recorded
fetch time on trust: this is the one value a proof cannot show came from the window end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from protocol.evaluation import targets
from protocol.evaluation.errors import permanent, transient
from protocol.evaluation.jsonbody import decimal_field, describe, parse_body, rows_of, str_field
from protocol.evaluation.model import Measurement, Plan
from protocol.evaluation.select import belonging
from protocol.evaluation.timebase import MINUTE_MS, Span
from protocol.hyperliquid import InfoRequest, RawResponse

SOURCE = "metaAndAssetCtxs"
MAX_LAG_MS = 5 * MINUTE_MS


@dataclass(frozen=True)
class OpenInterestMethod:
    """The open-interest entry (one instance, ``OPEN_INTEREST``)."""

    name: str = "open_interest_live"

    def target_of(self, token_identifier: str) -> str:
        return targets.coin(token_identifier)

    def plan(self, target: str, span: Span, now_ms: int) -> Plan:
        if now_ms > span.end_ms + MAX_LAG_MS:
            raise permanent(
                f"open interest at {span.end_ms} can no longer be observed at {now_ms} "
                f"(live data, at most {MAX_LAG_MS} ms after the window end)"
            )
        return Plan(requests=(InfoRequest(body={"type": SOURCE}),), rule=self._rule(target, span))

    def measure(self, target: str, span: Span, responses: Sequence[RawResponse]) -> Measurement:
        selected = belonging(responses, SOURCE, {})
        timely = [r for r in selected if span.end_ms <= r.fetched_at_ms <= span.end_ms + MAX_LAG_MS]
        if not timely:
            if all(r.fetched_at_ms < span.end_ms for r in selected):
                raise transient(f"open interest fetched before the window end {span.end_ms}")
            raise permanent(f"no open interest observed within {MAX_LAG_MS} ms after {span.end_ms}")
        response = min(timely, key=lambda r: r.fetched_at_ms)
        value = _open_interest(parse_body(response), target, describe(response.request))
        rule = self._rule(target, span)
        rule.update(
            items="1",
            fetched_at_ms=str(response.fetched_at_ms),
            lag_ms=str(response.fetched_at_ms - span.end_ms),
        )
        return Measurement(value, rule)

    def _rule(self, target: str, span: Span) -> dict[str, str]:
        return {
            "method": self.name,
            "source": SOURCE,
            "coin": target,
            "at_ms": str(span.end_ms),
            "max_lag_ms": str(MAX_LAG_MS),
        }


def _open_interest(body: Any, coin: str, where: str) -> Decimal:
    if not isinstance(body, list) or len(body) != 2 or not isinstance(body[0], dict):
        raise transient(f"response to {where} is not [meta, ctxs]")
    universe = rows_of(body[0].get("universe"), where)
    ctxs = rows_of(body[1], where)
    if len(universe) != len(ctxs):
        raise transient(f"response to {where}: {len(universe)} coins but {len(ctxs)} contexts")
    names = [str_field(asset, "name", where) for asset in universe]
    if names.count(coin) != 1:
        raise permanent(f"{coin!r} is not listed (once) in the response to {where}")
    return decimal_field(ctxs[names.index(coin)], "openInterest", where)


OPEN_INTEREST = OpenInterestMethod()
