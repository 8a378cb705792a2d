"""Generated series: deterministic, exact decimal strings, a coarse candle = fold of its minutes."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devnet.hl_sim.generate import (
    HOUR_MS,
    generate_fills,
    generate_funding,
    generate_minutes,
)
from devnet.hl_sim.minutes import INTERVAL_MS, MINUTE_MS

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000_000  # not on an hour or day boundary
PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def fold(minutes: list[dict[str, Any]], interval: str, t: int) -> dict[str, Any]:
    """The coarse candle as the design defines it, recomputed from 1m candles with Decimal."""
    return {
        "t": t,
        "T": t + INTERVAL_MS[interval] - 1,
        "o": Decimal(minutes[0]["o"]),
        "c": Decimal(minutes[-1]["c"]),
        "h": max(Decimal(m["h"]) for m in minutes),
        "l": min(Decimal(m["l"]) for m in minutes),
        "v": sum((Decimal(m["v"]) for m in minutes), Decimal(0)),
        "n": sum(m["n"] for m in minutes),
    }


def as_decimals(candle: dict[str, Any]) -> dict[str, Any]:
    return {k: Decimal(v) if k in "ochlv" else v for k, v in candle.items() if k not in "is"}


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    offset_min=st.integers(0, 3000),
    length_min=st.integers(1, 3000),
    interval=st.sampled_from(sorted(INTERVAL_MS)),
    seen_min=st.integers(0, 3000),
)
def test_coarse_candle_is_the_fold_of_its_minutes(
    seed: int, offset_min: int, length_min: int, interval: str, seen_min: int
) -> None:
    start = T0 + offset_min * MINUTE_MS
    series = generate_minutes("ETH", start, start + length_min * MINUTE_MS, seed)
    now = start + seen_min * MINUTE_MS  # minutes after now are not seen yet: partial candles
    width = INTERVAL_MS[interval]
    minutes = series.candles("1m", 0, 2**62, now)
    coarse = series.candles(interval, 0, 2**62, now)
    assert coarse, "at least the first minute is always seen"
    assert sum(c["n"] for c in coarse) == sum(m["n"] for m in minutes)
    for candle in coarse:
        inside = [m for m in minutes if candle["t"] <= m["t"] < candle["t"] + width]
        assert as_decimals(candle) == fold(inside, interval, candle["t"])
        assert candle["t"] % width == 0
        assert candle["i"] == interval
        assert candle["s"] == "ETH"


def test_same_seed_same_series_other_seed_other_series() -> None:
    a = generate_minutes("BTC", T0, T0 + 6 * HOUR_MS, seed=5)
    b = generate_minutes("BTC", T0, T0 + 6 * HOUR_MS, seed=5)
    c = generate_minutes("BTC", T0, T0 + 6 * HOUR_MS, seed=6)
    assert (a.o, a.h, a.l, a.c, a.v, a.n) == (b.o, b.h, b.l, b.c, b.v, b.n)
    assert a.c != c.c
    assert generate_funding("BTC", T0, T0 + 6 * HOUR_MS, 5) == generate_funding(
        "BTC", T0, T0 + 6 * HOUR_MS, 5
    )


def test_every_value_is_a_plain_decimal_string() -> None:
    series = generate_minutes("SOL", T0, T0 + 2 * HOUR_MS, seed=1)
    for candle in series.candles("1m", 0, 2**62, 2**62) + series.candles("1h", 0, 2**62, 2**62):
        for key in "ochlv":
            assert PLAIN_DECIMAL.match(candle[key]), candle
        assert Decimal(candle["l"]) <= min(Decimal(candle["o"]), Decimal(candle["c"]))
        assert Decimal(candle["h"]) >= max(Decimal(candle["o"]), Decimal(candle["c"]))
    for row in generate_funding("SOL", T0, T0 + 5 * HOUR_MS, seed=1):
        assert PLAIN_DECIMAL.match(row["fundingRate"]) and PLAIN_DECIMAL.match(row["premium"])


def test_funding_is_hourly_a_few_ms_after_the_hour() -> None:
    rows = generate_funding("BTC", T0, T0 + 48 * HOUR_MS, seed=2)
    assert len(rows) == 48
    hours = [r["time"] - r["time"] % HOUR_MS for r in rows]
    assert hours == list(range(hours[0], hours[0] + 48 * HOUR_MS, HOUR_MS))
    assert all(0 <= r["time"] % HOUR_MS < 200 for r in rows)
    assert hours[0] >= T0


def test_fills_are_ordered_share_timestamps_and_track_position() -> None:
    series = {c: generate_minutes(c, T0, T0 + 48 * HOUR_MS, 3) for c in ("BTC", "ETH")}
    fills = generate_fills(series, T0, T0 + 48 * HOUR_MS, 3, orders_per_hour=4)
    times = [f["time"] for f in fills]
    assert times == sorted(times)
    assert len(set(times)) < len(times), "orders fill in parts sharing one timestamp"
    position = {"BTC": Decimal(0), "ETH": Decimal(0)}
    for fill in fills:
        assert Decimal(fill["startPosition"]) == position[fill["coin"]]
        signed = Decimal(fill["sz"]) * (1 if fill["side"] == "B" else -1)
        position[fill["coin"]] += signed
        if fill["dir"] == "Open Long":
            assert fill["side"] == "B"
        if fill["dir"] == "Open Short":
            assert fill["side"] == "A"
