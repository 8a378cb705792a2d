"""Funding-history entries: the last rate before an instant, the sum and the count over a window.

    >>> from protocol.evaluation.timebase import Span
    >>> SUM.plan("BTC", Span(0, 3_600_000), now_ms=0).requests[0].body
    {'type': 'fundingHistory', 'coin': 'BTC', 'startTime': 0, 'endTime': 36000000}

Rows count by their own ``time`` (a row at 08:00:00.048 belongs to a window starting at 08:00).

* WINDOW_SUM / WINDOW_COUNT use the rows with ``start_ms <= time < end_ms``.
* SNAPSHOT_AT uses the latest row with ``end_ms - SNAPSHOT_LOOKBACK_MS <= time < end_ms``.

Completeness: the series must be seen to go on past the window, i.e. the stitched pages must hold
a row at or after ``end_ms`` (each request asks up to ``end_ms + LOOKAHEAD_MS``). Without one the
failure is transient while the newest response was fetched less than ``GRACE_MS`` after
``end_ms`` (the next row may not be published yet) and permanent after that (the series ended).
No row in the window is a permanent failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import pairwise

from protocol.evaluation import targets
from protocol.evaluation.errors import permanent, transient
from protocol.evaluation.jsonbody import describe, parse_body
from protocol.evaluation.model import Measurement, Plan
from protocol.evaluation.paging import Page, make_page, stitch
from protocol.evaluation.rows import FundingRow, funding_rows
from protocol.evaluation.select import belonging
from protocol.evaluation.timebase import HOUR_MS, Span
from protocol.hyperliquid import InfoRequest, RawResponse

SOURCE = "fundingHistory"
SNAPSHOT_LOOKBACK_MS = 24 * HOUR_MS
LOOKAHEAD_MS = 9 * HOUR_MS
GRACE_MS = 9 * HOUR_MS


@dataclass(frozen=True)
class FundingMethod:
    """A registry entry reducing the funding rows in the window (oldest first) to one value."""

    name: str
    snapshot: bool
    reduce: Callable[[Sequence[FundingRow]], Decimal]

    def target_of(self, token_identifier: str) -> str:
        return targets.coin(token_identifier)

    def rows_span(self, span: Span) -> Span:
        """The rows this entry reads: the window, or the lookback before a snapshot's end."""
        if self.snapshot:
            return Span(span.end_ms - SNAPSHOT_LOOKBACK_MS, span.end_ms)
        return span

    def plan(self, target: str, span: Span, now_ms: int) -> Plan:
        rows = self.rows_span(span)
        request = InfoRequest(
            body={
                "type": SOURCE,
                "coin": target,
                "startTime": rows.start_ms,
                "endTime": rows.end_ms + LOOKAHEAD_MS,
            }
        )
        return Plan(requests=(request,), rule=self._rule(target, rows))

    def measure(self, target: str, span: Span, responses: Sequence[RawResponse]) -> Measurement:
        rows_span = self.rows_span(span)
        pages = [_page(r, target) for r in belonging(responses, SOURCE, {"coin": target})]
        series = sorted(stitch(pages, rows_span, SOURCE), key=lambda r: r.time)
        _check_unique(series, target)
        _check_goes_on(series, pages, rows_span, target)
        inside = [r for r in series if r.time in rows_span]
        if not inside:
            raise permanent(f"no {target} funding rows in {rows_span.text()}")
        rule = self._rule(target, rows_span)
        rule.update(
            items=str(len(inside)), first_ms=str(inside[0].time), last_ms=str(inside[-1].time)
        )
        return Measurement(self.reduce(inside), rule)

    def _rule(self, target: str, rows: Span) -> dict[str, str]:
        return {
            "method": self.name,
            "source": SOURCE,
            "coin": target,
            "start_ms": str(rows.start_ms),
            "end_ms": str(rows.end_ms),
        }


def _page(response: RawResponse, coin: str) -> Page[FundingRow]:
    where = describe(response.request)
    rows = funding_rows(parse_body(response), where)
    for row in rows:
        if row.coin != coin:
            raise transient(f"response to {where} holds a funding row of {row.coin!r}")
    return make_page(response.request, response.fetched_at_ms, rows, request_type=SOURCE)


def _check_unique(series: Sequence[FundingRow], coin: str) -> None:
    for before, after in pairwise(series):
        if before.time == after.time:
            raise transient(f"two {coin} funding rows at {before.time}")


def _check_goes_on(
    series: Sequence[FundingRow], pages: Sequence[Page[FundingRow]], rows: Span, coin: str
) -> None:
    if series and series[-1].time >= rows.end_ms:
        return
    newest = max(p.fetched_at_ms for p in pages)
    last = series[-1].time if series else None
    reason = f"no {coin} funding row at or after the window end {rows.end_ms} (last row: {last})"
    if newest >= rows.end_ms + GRACE_MS:
        raise permanent(f"{reason}; the series ended before the window end")
    raise transient(f"{reason} yet, as fetched at {newest}")


def _last_rate(rows: Sequence[FundingRow]) -> Decimal:
    return rows[-1].rate


def _sum(rows: Sequence[FundingRow]) -> Decimal:
    return sum((r.rate for r in rows), Decimal(0))


def _count(rows: Sequence[FundingRow]) -> Decimal:
    return Decimal(len(rows))


LAST = FundingMethod("funding_last_before_end", snapshot=True, reduce=_last_rate)
SUM = FundingMethod("funding_rate_sum", snapshot=False, reduce=_sum)
COUNT = FundingMethod("funding_row_count", snapshot=False, reduce=_count)
