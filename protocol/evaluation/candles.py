"""Candle-based entries: a coin's close at an instant, its volume and trade count over a window.

    >>> from protocol.evaluation.timebase import Span
    >>> plan = CLOSE.plan("BTC", Span(0, 7_200_000), now_ms=7_200_000)
    >>> plan.requests[0].body["req"]
    {'coin': 'BTC', 'interval': '2h', 'startTime': 0, 'endTime': 7199999}

The interval comes from ``protocol.evaluation.intervals``. Every needed candle must be present
exactly once (a repeat across pages must be identical), must have closed when its response was
fetched, and must carry the requested coin and interval. A needed candle that is absent is a
permanent failure, except when no response asked for it or every response asking for it was
fetched before it closed (transient: ask again later); a full page that stopped short of it is a
permanent page cap hit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from protocol.evaluation import targets
from protocol.evaluation.errors import permanent, transient
from protocol.evaluation.intervals import CandleRange, candle_range
from protocol.evaluation.jsonbody import describe, parse_body
from protocol.evaluation.model import Measurement, Plan
from protocol.evaluation.paging import Page, make_page
from protocol.evaluation.rows import Candle, candles
from protocol.evaluation.select import belonging
from protocol.evaluation.timebase import Span
from protocol.hyperliquid import InfoRequest, RawResponse

SOURCE = "candleSnapshot"


@dataclass(frozen=True)
class CandleMethod:
    """A registry entry reducing the needed candles (oldest first) to one value."""

    name: str
    snapshot: bool
    reduce: Callable[[Sequence[Candle]], Decimal]

    def target_of(self, token_identifier: str) -> str:
        return targets.coin(token_identifier)

    def plan(self, target: str, span: Span, now_ms: int) -> Plan:
        rng = candle_range(span, snapshot=self.snapshot, now_ms=now_ms)
        request = InfoRequest(
            body={
                "type": SOURCE,
                "req": {
                    "coin": target,
                    "interval": rng.interval,
                    "startTime": rng.first_open_ms,
                    "endTime": rng.end_ms - 1,
                },
            }
        )
        return Plan(requests=(request,), rule=self._rule(target, rng))

    def measure(self, target: str, span: Span, responses: Sequence[RawResponse]) -> Measurement:
        rng = candle_range(span, snapshot=self.snapshot, now_ms=None)
        selected = belonging(responses, SOURCE, {"coin": target, "interval": rng.interval})
        found, pages = _collect(selected, target, rng)
        needed = [_needed(t, found, pages, target, rng) for t in rng.opens()]
        rule = self._rule(target, rng)
        rule["items"] = str(len(needed))
        return Measurement(self.reduce(needed), rule)

    def _rule(self, target: str, rng: CandleRange) -> dict[str, str]:
        return {
            "method": self.name,
            "source": SOURCE,
            "coin": target,
            "interval": rng.interval,
            "start_ms": str(rng.first_open_ms),
            "end_ms": str(rng.end_ms),
        }


def _collect(
    responses: Sequence[RawResponse], coin: str, rng: CandleRange
) -> tuple[dict[int, tuple[Candle, RawResponse]], list[Page[Candle]]]:
    found: dict[int, tuple[Candle, RawResponse]] = {}
    pages = []
    for response in responses:
        where = describe(response.request)
        rows = candles(parse_body(response), where)
        pages.append(make_page(response.request, response.fetched_at_ms, rows, request_type=SOURCE))
        for candle in rows:
            _check(candle, coin, rng, where)
            seen = found.get(candle.open_ms)
            if seen is not None and seen[0] != candle:
                raise transient(
                    f"two different {rng.interval} candles open at {candle.open_ms}: "
                    f"in {describe(seen[1].request)} and in {where}"
                )
            if seen is None or seen[1].fetched_at_ms < response.fetched_at_ms:
                found[candle.open_ms] = (candle, response)
    return found, pages


def _check(candle: Candle, coin: str, rng: CandleRange, where: str) -> None:
    if candle.coin != coin or candle.interval != rng.interval:
        raise transient(
            f"response to {where} holds a {candle.interval} candle of {candle.coin!r} "
            f"at {candle.open_ms}"
        )
    if candle.open_ms % rng.interval_ms or candle.last_ms != candle.open_ms + rng.interval_ms - 1:
        raise transient(
            f"response to {where}: candle [{candle.open_ms}, {candle.last_ms}] is not one "
            f"{rng.interval} interval"
        )


def _needed(
    open_ms: int,
    found: dict[int, tuple[Candle, RawResponse]],
    pages: Sequence[Page[Candle]],
    coin: str,
    rng: CandleRange,
) -> Candle:
    hit = found.get(open_ms)
    if hit is None:
        raise _missing(open_ms, found, pages, coin, rng)
    candle, response = hit
    if response.fetched_at_ms <= candle.last_ms:
        raise transient(
            f"the {rng.interval} candle of {coin} opening at {open_ms} was still open when "
            f"{describe(response.request)} was fetched at {response.fetched_at_ms}"
        )
    return candle


def _missing(
    open_ms: int,
    found: dict[int, tuple[Candle, RawResponse]],
    pages: Sequence[Page[Candle]],
    coin: str,
    rng: CandleRange,
) -> Exception:
    last_ms = open_ms + rng.interval_ms - 1
    asked = [
        p for p in pages if p.start_ms <= last_ms and (p.end_ms is None or open_ms <= p.end_ms)
    ]
    if not asked:
        return transient(f"no response asks for the {rng.interval} candle of {coin} at {open_ms}")
    if all(p.fetched_at_ms <= last_ms for p in asked):
        return transient(
            f"the {rng.interval} candle of {coin} at {open_ms} had not closed when it was asked for"
        )
    if all(p.full and max(c.open_ms for c in p.rows) < open_ms for p in asked):
        return permanent(
            f"page cap hit: every response asking for the {rng.interval} candle of {coin} at "
            f"{open_ms} is full and stops before it"
        )
    window = f"[{rng.first_open_ms}, {rng.end_ms})"
    inside = [t for t in found if rng.first_open_ms <= t < rng.end_ms]
    if not inside:
        return permanent(f"no {rng.interval} candles of {coin} in {window}")
    if open_ms > max(inside):
        return permanent(
            f"the {rng.interval} candles of {coin} end at {max(inside) + rng.interval_ms}, "
            f"before the window end {rng.end_ms}"
        )
    return permanent(f"the {rng.interval} candle of {coin} opening at {open_ms} is missing")


def _last_close(items: Sequence[Candle]) -> Decimal:
    return items[-1].close


def _volume(items: Sequence[Candle]) -> Decimal:
    return sum((c.volume for c in items), Decimal(0))


def _trades(items: Sequence[Candle]) -> Decimal:
    return Decimal(sum(c.trades for c in items))


CLOSE = CandleMethod("candle_close", snapshot=True, reduce=_last_close)
VOLUME = CandleMethod("candle_volume_sum", snapshot=False, reduce=_volume)
TRADES = CandleMethod("candle_trade_count", snapshot=False, reduce=_trades)
