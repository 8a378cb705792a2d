"""The candle interval rule: boundaries, the 5000-candle reach, off-minute ends."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.evaluation import EvaluationError
from protocol.evaluation.intervals import (
    INTERVAL_MS,
    aligned,
    candle_range,
    earliest_reachable,
    floor_minute,
)
from protocol.evaluation.timebase import Span

pytestmark = pytest.mark.timeout(30)

M = 60_000
H = 60 * M
D = 24 * H
DAY = 19_500 * D  # 2023-05-23 00:00 UTC, a 1d boundary


def test_floor_minute() -> None:
    assert floor_minute(DAY) == DAY
    assert floor_minute(DAY + 59_999) == DAY
    assert floor_minute(DAY + 60_000) == DAY + M


def test_aligned_lists_every_interval_both_ends_fall_on() -> None:
    assert aligned(DAY, DAY + D) == list(INTERVAL_MS)
    assert aligned(DAY + 15 * M, DAY + 18 * M) == ["1m", "3m"]
    assert aligned(DAY, DAY + 20 * M) == ["1m", "5m"]
    assert aligned(DAY + H, DAY + 3 * H)[-1] == "1h"
    assert aligned(DAY + 2 * H, DAY + 6 * H)[-1] == "2h"
    assert aligned(DAY + 8 * H, DAY + 16 * H)[-1] == "8h"
    assert aligned(DAY + 12 * H, DAY + D)[-1] == "12h"


def test_snapshot_uses_only_the_end_and_one_candle() -> None:
    rng = candle_range(Span(DAY + 7 * M, DAY + D), snapshot=True, now_ms=DAY + D)
    assert (rng.interval, rng.first_open_ms, rng.end_ms, rng.count) == ("1d", DAY, DAY + D, 1)
    rng = candle_range(Span(DAY, DAY + 5 * H), snapshot=True, now_ms=DAY + D)
    assert (rng.interval, rng.first_open_ms, rng.count) == ("1h", DAY + 4 * H, 1)


def test_sum_needs_both_ends_aligned() -> None:
    # end on a day boundary, start on an odd hour: only 1h (and finer) fit both
    rng = candle_range(Span(DAY + 3 * H, DAY + D), snapshot=False, now_ms=DAY + D)
    assert (rng.interval, rng.first_open_ms, rng.end_ms, rng.count) == (
        "1h",
        DAY + 3 * H,
        DAY + D,
        21,
    )
    rng = candle_range(Span(DAY, DAY + 3 * D), snapshot=False, now_ms=DAY + 3 * D)
    assert (rng.interval, rng.count) == ("1d", 3)
    rng = candle_range(Span(DAY + 15 * M, DAY + 18 * M), snapshot=False, now_ms=DAY + D)
    assert (rng.interval, rng.count) == ("3m", 1)


def test_off_minute_ends_floor_to_the_minute() -> None:
    # t_end 12:00:30 uses the 1m candle closing at 12:00, which a 12h candle also closes at
    rng = candle_range(Span(DAY, DAY + 12 * H + 30_000), snapshot=True, now_ms=DAY + D)
    assert (rng.interval, rng.first_open_ms, rng.end_ms) == ("12h", DAY, DAY + 12 * H)
    rng = candle_range(Span(DAY + 30_000, DAY + 3 * M + 59_000), snapshot=False, now_ms=DAY + D)
    assert (rng.interval, rng.first_open_ms, rng.end_ms, rng.count) == ("3m", DAY, DAY + 3 * M, 1)
    rng = candle_range(Span(DAY + 61_000, DAY + 2 * H + 1_000), snapshot=False, now_ms=DAY + D)
    assert (rng.interval, rng.first_open_ms, rng.end_ms) == ("1m", DAY + M, DAY + 2 * H)


def test_a_sum_window_inside_one_minute_is_permanent() -> None:
    with pytest.raises(EvaluationError) as err:
        candle_range(Span(DAY + 1_000, DAY + 59_000), snapshot=False, now_ms=DAY + D)
    assert err.value.permanent
    assert "no whole minute" in err.value.reason


def test_reach_boundary_keeps_one_candle_of_slack() -> None:
    # the candle in progress at now is the most recent; 5000 are served; the first needed candle
    # must be among the 4999 most recent so a fetch one candle later still finds it.
    first = DAY + 3 * H
    span = Span(first, first + 2 * H)
    assert earliest_reachable("1h", first + 4998 * H) == first
    assert candle_range(span, snapshot=False, now_ms=first + 4998 * H).interval == "1h"
    assert candle_range(span, snapshot=False, now_ms=first + 4999 * H - 1).interval == "1h"
    with pytest.raises(EvaluationError) as err:
        candle_range(span, snapshot=False, now_ms=first + 4999 * H)
    assert err.value.permanent
    assert "reachable" in err.value.reason


def test_minute_windows_reach_only_about_three_and_a_half_days() -> None:
    span = Span(DAY + 7 * M, DAY + 9 * M)
    assert candle_range(span, snapshot=False, now_ms=DAY + 3 * D).interval == "1m"
    with pytest.raises(EvaluationError):
        candle_range(span, snapshot=False, now_ms=DAY + 4 * D)
    # without now (as evaluate does) reach is not checked
    assert candle_range(span, snapshot=False, now_ms=None).interval == "1m"


def test_snapshot_reach_counts_from_the_needed_candle() -> None:
    end = DAY + 7 * M
    first = end - M
    assert candle_range(Span(end, end), snapshot=True, now_ms=first + 4998 * M).interval == "1m"
    with pytest.raises(EvaluationError):
        candle_range(Span(end, end), snapshot=True, now_ms=first + 4999 * M)


NAIVE = [(name, length) for name, length in reversed(list(INTERVAL_MS.items()))]


@given(
    start_min=st.integers(0, 3 * 1440),
    length_min=st.integers(1, 3 * 1440),
    snapshot=st.booleans(),
)
@pytest.mark.timeout(30)
def test_interval_is_the_coarsest_aligned_one(
    start_min: int, length_min: int, snapshot: bool
) -> None:
    start, end = DAY + start_min * M, DAY + (start_min + length_min) * M
    ends = (end,) if snapshot else (start, end)
    expected = next(name for name, length in NAIVE if all(t % length == 0 for t in ends))
    rng = candle_range(Span(start, end), snapshot=snapshot, now_ms=end)
    assert rng.interval == expected
    assert rng.end_ms == end
    assert rng.first_open_ms == (end - INTERVAL_MS[expected] if snapshot else start)
