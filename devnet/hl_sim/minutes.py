"""A generated 1-minute candle series and its exact aggregation to coarser intervals.

Prices are held as integer ticks and volumes as integer size units, so every fold is exact: a
coarse candle's open is its first minute's open, close its last minute's close, high/low the
max/min, volume and trade count the sums. Strings are made only at the edge::

    >>> s = MinuteSeries("BTC", t0=0, px_decimals=1, sz_decimals=5,
    ...                  o=[100, 105], h=[110, 107], l=[99, 101], c=[105, 102], v=[3, 4], n=[1, 2])
    >>> s.candle("1m", 0, now_ms=10**9)["c"], s.candle("2h", 0, now_ms=10**9)["c"]
    ('10.5', '10.2')
    >>> s.candle("2h", 0, now_ms=10**9)["v"], s.candle("2h", 0, now_ms=10**9)["n"]
    ('0.00007', 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MINUTE_MS = 60_000

INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": 1440 * MINUTE_MS,
}
"""Intervals the simulator serves; candles open at multiples of the interval since the epoch."""

API_ONLY_INTERVALS = frozenset({"3d", "1w", "1M"})
"""Intervals the real API has but the simulator does not serve (answered with a 422)."""


def scaled(units: int, decimals: int) -> str:
    """``units * 10**-decimals`` as a plain decimal string: ``scaled(600000, 1) == "60000.0"``."""
    return format(Decimal(units).scaleb(-decimals), "f")


@dataclass
class MinuteSeries:
    """Contiguous 1m candles of one coin from ``t0``: minute ``i`` opens at ``t0 + i * 60000``."""

    coin: str
    t0: int
    px_decimals: int
    sz_decimals: int
    o: list[int]
    h: list[int]
    l: list[int]  # noqa: E741 - the API's own name
    c: list[int]
    v: list[int]
    n: list[int]

    @property
    def end_ms(self) -> int:
        """Open time of the minute after the last one."""
        return self.t0 + len(self.c) * MINUTE_MS

    def index_range(self, start_ms: int, stop_ms: int, now_ms: int) -> range:
        """Indices of the minutes opening in ``[start_ms, stop_ms)`` and at or before ``now_ms``."""
        first = max(0, -(-(start_ms - self.t0) // MINUTE_MS))
        stop = min(
            len(self.c), -(-(stop_ms - self.t0) // MINUTE_MS), (now_ms - self.t0) // MINUTE_MS + 1
        )
        return range(first, max(first, stop))

    def candle(self, interval: str, t: int, now_ms: int) -> dict[str, Any] | None:
        """The ``interval`` candle opening at ``t``, folded from the minutes seen by ``now_ms``."""
        width = INTERVAL_MS[interval]
        idx = self.index_range(t, t + width, now_ms)
        if not idx:
            return None
        lo, hi = idx.start, idx.stop
        return {
            "T": t + width - 1,
            "c": scaled(self.c[hi - 1], self.px_decimals),
            "h": scaled(max(self.h[lo:hi]), self.px_decimals),
            "i": interval,
            "l": scaled(min(self.l[lo:hi]), self.px_decimals),
            "n": sum(self.n[lo:hi]),
            "o": scaled(self.o[lo], self.px_decimals),
            "s": self.coin,
            "t": t,
            "v": scaled(sum(self.v[lo:hi]), self.sz_decimals),
        }

    def candles(
        self, interval: str, first_t: int, last_t: int, now_ms: int
    ) -> list[dict[str, Any]]:
        """Every ``interval`` candle with open time in ``[first_t, last_t]`` that has a minute."""
        width = INTERVAL_MS[interval]
        begin = max(first_t, self.t0 - self.t0 % width)
        begin += -begin % width
        out = []
        for t in range(begin, min(last_t, self.end_ms - 1) + 1, width):
            row = self.candle(interval, t, now_ms)
            if row is not None:
                out.append(row)
        return out

    def close_at(self, now_ms: int) -> int | None:
        """Ticks of the last close seen by ``now_ms``, or None before the series starts."""
        idx = self.index_range(self.t0, self.end_ms, now_ms)
        return self.c[idx.stop - 1] if idx else None
