"""Time-filtered answers: candles, funding history, fills; filtered and capped like the real API.

Semantics (what the simulator does, and why):

- ``candleSnapshot``: candles that *overlap* ``[startTime, endTime]`` (close time ``T >=
  startTime`` and open time ``t <= endTime``), oldest first. The recorded fixture shows the real API
  returning the candle that contains ``startTime``. Only candles opened by the simulator's
  ``now`` exist (the current one folded from the minutes so far). Reachable history is the
  ``retention`` (5000) most recent candles of the interval, counted back from
  ``min(now, as_of)`` where ``as_of`` is when the series was recorded (the cassette's ``date``)
  or where a generated series ends. With retention on, no window holds more than 5000 candles;
  with ``retention=None`` the first 5000 from ``startTime`` are returned (a knob for paging tests).
- ``fundingHistory``: rows with ``startTime <= time <= endTime`` (``endTime`` defaults to now),
  the first 500 from ``startTime``.
- ``userFills``: the 2000 most recent fills, newest first. ``userFillsByTime``: fills with time
  in ``[startTime, endTime]``, oldest first, the first 2000 from ``startTime``. Either reaches only
  the user's 10000 most recent fills.
- An unknown coin or user has no rows: ``[]``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from devnet.hl_sim.dataset import Dataset, Row
from devnet.hl_sim.minutes import INTERVAL_MS
from protocol.hyperliquid import PAGE_CAPS

CANDLE_RETENTION = 5000
USER_FILLS_CAP = 2000
REACHABLE_FILLS = 10_000


def _horizon(anchor_ms: int, width: int, retention: int | None) -> int | None:
    """Open time of the oldest reachable candle, or None when history is unlimited."""
    if retention is None:
        return None
    return anchor_ms - anchor_ms % width - (retention - 1) * width


def candle_rows(
    ds: Dataset,
    coin: str,
    interval: str,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    retention: int | None = CANDLE_RETENTION,
) -> list[Row]:
    width = INTERVAL_MS[interval]
    first, last = start_ms - width + 1, min(end_ms, now_ms)
    rows: dict[int, Row] = {}
    series = ds.minutes.get(coin)
    if series is not None:
        horizon = _horizon(min(now_ms, series.end_ms - 1), width, retention)
        lo = first if horizon is None else max(first, horizon)
        for row in series.candles(interval, lo, last, now_ms):
            rows[row["t"]] = row
    recorded = ds.candles.get((coin, interval))
    if recorded is not None:
        horizon = _horizon(min(now_ms, recorded.as_of_ms), width, retention)
        lo = first if horizon is None else max(first, horizon)
        for t, row in recorded.rows.items():
            if lo <= t <= last:
                rows[t] = row
    return [rows[t] for t in sorted(rows)][: PAGE_CAPS["candleSnapshot"]]


def funding_rows(
    ds: Dataset, coin: str, start_ms: int, end_ms: int | None, now_ms: int
) -> list[Row]:
    held = ds.funding.get(coin, {})
    last = now_ms if end_ms is None else min(end_ms, now_ms)
    times = sorted(t for t in held if start_ms <= t <= last)
    return [held[t] for t in times[: PAGE_CAPS["fundingHistory"]]]


def _reachable_fills(ds: Dataset, user: str, now_ms: int) -> list[Row]:
    held = ds.fills.get(user.lower(), [])
    visible = held[: bisect_right(held, now_ms, key=_time)]
    return visible[-REACHABLE_FILLS:]


def user_fills(ds: Dataset, user: str, now_ms: int) -> list[Row]:
    recent = _reachable_fills(ds, user, now_ms)[-USER_FILLS_CAP:]
    return sorted(recent, key=_time, reverse=True)


def user_fills_by_time(
    ds: Dataset, user: str, start_ms: int, end_ms: int | None, now_ms: int
) -> list[Row]:
    fills = _reachable_fills(ds, user, now_ms)
    lo = bisect_left(fills, start_ms, key=_time)
    hi = len(fills) if end_ms is None else bisect_right(fills, end_ms, key=_time)
    return fills[lo:hi][: PAGE_CAPS["userFillsByTime"]]


def _time(row: Row) -> int:
    return int(row["time"])
