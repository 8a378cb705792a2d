"""User-fill entries: a user's traded notional, fill count and closed PnL over a window.

    >>> from protocol.evaluation.timebase import Span
    >>> NOTIONAL.plan("0x" + "ab" * 20, Span(0, 1000), now_ms=0).requests[0].body["endTime"]
    999

Fills count by their ``time``: those with ``start_ms <= time < end_ms``, over every coin the user
trades. Notional is ``px * sz`` per fill (USDC), PnL the fills' ``closedPnl`` (fees not deducted).
Pages are ``userFillsByTime`` responses stitched by ``protocol.evaluation.paging``; the window is
complete only when a page that is not full was fetched after the window end. No fill in the
window is a permanent failure (it cannot be told apart from fills out of Hyperliquid's reach).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from protocol.evaluation import targets
from protocol.evaluation.errors import permanent
from protocol.evaluation.jsonbody import describe, parse_body
from protocol.evaluation.model import Measurement, Plan
from protocol.evaluation.paging import Page, make_page, stitch
from protocol.evaluation.rows import Fill, fills
from protocol.evaluation.select import belonging
from protocol.evaluation.timebase import Span
from protocol.hyperliquid import InfoRequest, RawResponse

SOURCE = "userFillsByTime"


@dataclass(frozen=True)
class FillMethod:
    """A registry entry reducing a user's fills in the window to one value."""

    name: str
    reduce: Callable[[Sequence[Fill]], Decimal]

    def target_of(self, token_identifier: str) -> str:
        return targets.user(token_identifier)

    def plan(self, target: str, span: Span, now_ms: int) -> Plan:
        request = InfoRequest(
            body={
                "type": SOURCE,
                "user": target,
                "startTime": span.start_ms,
                "endTime": span.end_ms - 1,
            }
        )
        return Plan(requests=(request,), rule=self._rule(target, span))

    def measure(self, target: str, span: Span, responses: Sequence[RawResponse]) -> Measurement:
        pages = [_page(r) for r in belonging(responses, SOURCE, {"user": target})]
        inside = sorted(
            (f for f in stitch(pages, span, SOURCE) if f.time in span), key=lambda f: f.time
        )
        if not inside:
            raise permanent(f"no fills of {target} in {span.text()}")
        rule = self._rule(target, span)
        rule.update(
            items=str(len(inside)), first_ms=str(inside[0].time), last_ms=str(inside[-1].time)
        )
        return Measurement(self.reduce(inside), rule)

    def _rule(self, target: str, span: Span) -> dict[str, str]:
        return {
            "method": self.name,
            "source": SOURCE,
            "user": target,
            "start_ms": str(span.start_ms),
            "end_ms": str(span.end_ms),
        }


def _page(response: RawResponse) -> Page[Fill]:
    rows = fills(parse_body(response), describe(response.request))
    return make_page(response.request, response.fetched_at_ms, rows, request_type=SOURCE)


def _notional(items: Sequence[Fill]) -> Decimal:
    return sum((f.px * f.sz for f in items), Decimal(0))


def _count(items: Sequence[Fill]) -> Decimal:
    return Decimal(len(items))


def _closed_pnl(items: Sequence[Fill]) -> Decimal:
    return sum((f.closed_pnl for f in items), Decimal(0))


NOTIONAL = FillMethod("fill_notional_sum", reduce=_notional)
COUNT = FillMethod("fill_count", reduce=_count)
CLOSED_PNL = FillMethod("fill_closed_pnl_sum", reduce=_closed_pnl)
