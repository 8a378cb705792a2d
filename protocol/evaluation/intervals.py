"""Which candle interval answers a window: the coarsest one that gives the same value.

A candle's close is the close of its last minute and its volume the sum of its minutes, so any
interval whose boundaries the window's ends fall on gives the same value; the coarsest needs the
fewest items and the least request weight. Candles open on multiples of their interval since the
epoch (Hyperliquid's 1d candles open at 00:00 UTC).

    >>> r = candle_range(Span(3_600_000 * 10, 3_600_000 * 13), snapshot=False,
    ...                  now_ms=3_600_000 * 20)
    >>> r.interval, r.first_open_ms, r.end_ms, r.count
    ('1h', 36000000, 46800000, 3)

Rules, exactly:

* Ends that fall on no minute are floored to the minute: the value then comes from the last 1m
  candle that closed at or before each end (for a sum, ``[floor(start), floor(end))``).
* SNAPSHOT_AT needs one candle, the one closing at ``floor(end)``; only the end must be aligned.
  WINDOW_SUM and WINDOW_COUNT need every candle of ``[floor(start), floor(end))``; both ends must be
  aligned.
* Reach: Hyperliquid serves only the ``REACH_CANDLES`` most recent candles of an interval, counted
  back from the candle in progress at ``now``. One candle of slack is kept for the time between
  planning and fetching, so the first needed candle must open at or after
  ``(now // I - (REACH_CANDLES - 1 - REACH_SLACK)) * I``. Among the aligned intervals that reach,
  the coarsest wins; none reaching is a permanent failure.

Since a coarser interval always reaches further back, the coarsest aligned interval is the only
candidate that can win; ``candle_range(..., now_ms=None)`` skips the reach check, which is how
``evaluate`` recovers the plan's interval from the window alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.evaluation.errors import permanent
from protocol.evaluation.timebase import MINUTE_MS, Span

INTERVALS: tuple[tuple[str, int], ...] = (
    ("1m", MINUTE_MS),
    ("3m", 3 * MINUTE_MS),
    ("5m", 5 * MINUTE_MS),
    ("15m", 15 * MINUTE_MS),
    ("30m", 30 * MINUTE_MS),
    ("1h", 60 * MINUTE_MS),
    ("2h", 120 * MINUTE_MS),
    ("4h", 240 * MINUTE_MS),
    ("8h", 480 * MINUTE_MS),
    ("12h", 720 * MINUTE_MS),
    ("1d", 1440 * MINUTE_MS),
)
"""Hyperliquid's candle intervals, finest first, with their length in milliseconds."""

INTERVAL_MS: dict[str, int] = dict(INTERVALS)
REACH_CANDLES = 5000
REACH_SLACK = 1


def floor_minute(ms: int) -> int:
    """The minute boundary at or before ``ms``: ``floor_minute(119_999) == 60_000``."""
    return ms - ms % MINUTE_MS


def aligned(*instants_ms: int) -> list[str]:
    """The intervals whose boundaries every instant falls on, finest first.

    >>> aligned(7_200_000, 10_800_000)[-1]
    '1h'
    """
    return [name for name, length in INTERVALS if all(t % length == 0 for t in instants_ms)]


def earliest_reachable(interval: str, now_ms: int) -> int:
    """The open time of the oldest candle of ``interval`` that is safe to ask for at ``now_ms``."""
    length = INTERVAL_MS[interval]
    return (now_ms // length - (REACH_CANDLES - 1 - REACH_SLACK)) * length


@dataclass(frozen=True)
class CandleRange:
    """The candles a window needs: those opening in ``[first_open_ms, end_ms)``."""

    interval: str
    interval_ms: int
    first_open_ms: int
    end_ms: int

    @property
    def count(self) -> int:
        return (self.end_ms - self.first_open_ms) // self.interval_ms

    def opens(self) -> range:
        """The open time of every needed candle, oldest first."""
        return range(self.first_open_ms, self.end_ms, self.interval_ms)


def candle_range(span: Span, *, snapshot: bool, now_ms: int | None) -> CandleRange:
    """The interval and candles for ``span``; a permanent ``EvaluationError`` if none fits."""
    end = floor_minute(span.end_ms)
    start = end if snapshot else floor_minute(span.start_ms)
    if not snapshot and start >= end:
        raise permanent(f"window {span.text()} holds no whole minute after flooring its ends")
    candidates = []
    for name in aligned(start, end):
        length = INTERVAL_MS[name]
        first = end - length if snapshot else start
        if first < 0:
            continue
        if now_ms is not None and first < earliest_reachable(name, now_ms):
            continue
        candidates.append(CandleRange(name, length, first, end))
    if not candidates:
        if now_ms is None:
            raise permanent(f"no candle interval fits window {span.text()}")
        oldest = earliest_reachable(aligned(start, end)[-1], now_ms)
        raise permanent(
            f"window {span.text()} starts before the reachable candle history "
            f"(the {REACH_CANDLES} most recent {aligned(start, end)[-1]} candles at {now_ms}, "
            f"oldest usable opens at {oldest})"
        )
    return candidates[-1]
