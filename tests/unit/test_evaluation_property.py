"""Generated series, fetched through a fake paging server, against a deliberately naive reference.

The reference loops over the generated rows with plain ``Decimal`` sums and its own interval pick;
the code under test goes through ``plan`` -> fake server -> ``next_page`` -> ``evaluate`` with
small page caps, so paging and stitching are exercised on every example.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.evaluation import EvaluationError, evaluate, next_page, plan
from protocol.hyperliquid import PAGE_CAPS, InfoRequest, RawResponse
from protocol.spec import MarketSpec
from tests.fixtures import market

pytestmark = pytest.mark.timeout(30)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

M = 60_000
H = 60 * M
USER = "0x" + "12" * 20
COARSE_FIRST = [
    ("1d", 1440 * M),
    ("12h", 720 * M),
    ("8h", 480 * M),
    ("4h", 240 * M),
    ("2h", 120 * M),
    ("1h", 60 * M),
    ("30m", 30 * M),
    ("15m", 15 * M),
    ("5m", 5 * M),
    ("3m", 3 * M),
    ("1m", M),
]
Row = dict[str, Any]


def fake_server(rows: list[Row], cap: int) -> Callable[[InfoRequest], bytes]:
    """Answers like Hyperliquid: rows in [startTime, endTime], oldest first, at most ``cap``."""

    def answer(request: InfoRequest) -> bytes:
        if request.type == "candleSnapshot":
            req = request.body["req"]
            hits = [r for r in rows if r["T"] >= req["startTime"] and r["t"] <= req["endTime"]]
            hits.sort(key=lambda r: r["t"])
        else:
            start, end = request.body["startTime"], request.body.get("endTime", 2**62)
            hits = sorted((r for r in rows if start <= r["time"] <= end), key=lambda r: r["time"])
        return json.dumps(hits[:cap]).encode()

    return answer


def fetch_all(
    spec: MarketSpec, now_ms: int, server: Callable[[InfoRequest], bytes]
) -> list[RawResponse]:
    """What the client does: plan, fetch, follow next_page until None."""
    pages = []
    for first in plan(spec, now_ms).requests:
        request: InfoRequest | None = first
        while request is not None:
            body = server(request)
            pages.append(
                RawResponse(
                    request=request, url="fake", fetched_at_ms=now_ms, status=200, body=body
                )
            )
            request = next_page(request, body)
            assert len(pages) < 1000
    return pages


def plain(value: Decimal) -> str:
    """A decimal as Hyperliquid writes it: no exponent."""
    return format(value, "f")


def naive_scaled(value: Decimal, rounding_decimals: int, value_decimals: int) -> int:
    return round(round(value, rounding_decimals) * 10**value_decimals)


def check(spec: MarketSpec, pages: list[RawResponse], expected: Decimal | None) -> None:
    if expected is None:
        with pytest.raises(EvaluationError) as err:
            evaluate(spec, pages)
        assert err.value.permanent
        return
    result = evaluate(spec, pages)
    assert result.value == expected
    scaled = naive_scaled(expected, spec.oracle.rounding_decimals, spec.subject.value_decimals)
    assert result.scaled == scaled
    holds = {
        "GT": scaled > spec.predicate.threshold,
        "GTE": scaled >= spec.predicate.threshold,
        "LT": scaled < spec.predicate.threshold,
        "LTE": scaled <= spec.predicate.threshold,
    }[spec.predicate.op]
    assert result.outcome == int(holds)


amounts = st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=-1, max_value=1, places=8, allow_nan=False, allow_infinity=False)
ops = st.sampled_from(["GT", "GTE", "LT", "LTE"])
decimals = st.integers(0, 8)


@st.composite
def candle_case(draw: st.DrawFn) -> tuple[MarketSpec, list[Row], int, Decimal | None]:
    _, gen_len = draw(st.sampled_from(COARSE_FIRST))
    start = (1_684_000_000_000 // gen_len + draw(st.integers(0, 500))) * gen_len
    end = start + draw(st.integers(1, 40)) * gen_len
    kind = draw(st.sampled_from(["WINDOW_SUM", "WINDOW_COUNT", "SNAPSHOT_AT"]))
    ends = (end,) if kind == "SNAPSHOT_AT" else (start, end)
    name, length = next((n, i) for n, i in COARSE_FIRST if all(t % i == 0 for t in ends))
    first = end - length if kind == "SNAPSHOT_AT" else start
    opens = range(first - 3 * length, end + 3 * length, length)
    rows = [
        {"t": t, "T": t + length - 1, "s": "BTC", "i": name, "o": "1", "h": "1", "l": "1"}
        | {"c": plain(draw(amounts)), "v": plain(draw(amounts)), "n": draw(st.integers(0, 10_000))}
        for t in opens
    ]
    inside = [r for r in rows if first <= r["t"] < end]
    dropped = draw(st.booleans()) and draw(st.integers(0, 9)) == 0
    if dropped:
        gone = draw(st.sampled_from(inside))
        rows.remove(gone)
    # the naive reference
    expected: Decimal | None
    if dropped:
        expected = None
    elif kind == "SNAPSHOT_AT":
        expected = next(Decimal(r["c"]) for r in rows if r["t"] + length == end)
    elif kind == "WINDOW_SUM":
        expected = Decimal(0)
        for r in inside:
            expected += Decimal(r["v"])
    else:
        expected = Decimal(0)
        for r in inside:
            expected += r["n"]
    spec = market(
        "BTC",
        (kind, start // 1000, end // 1000),
        metric="" if kind == "SNAPSHOT_AT" else "volume",
        op=draw(ops),
        threshold=draw(st.integers(-10, 10**8)),
        value_decimals=draw(decimals),
        rounding_decimals=draw(decimals),
    )
    return spec, rows, end + 4 * length, expected


@SETTINGS
@given(case=candle_case(), cap=st.integers(1, 6))
def test_candles_match_the_naive_reference(
    case: tuple[MarketSpec, list[Row], int, Decimal | None], cap: int
) -> None:
    spec, rows, now_ms, expected = case
    with patch.dict(PAGE_CAPS, {"candleSnapshot": cap}):
        pages = fetch_all(spec, now_ms, fake_server(rows, cap))
        check(spec, pages, expected)


@st.composite
def funding_case(draw: st.DrawFn) -> tuple[MarketSpec, list[Row], int, Decimal | None]:
    start_s = 1_700_000_000 + draw(st.integers(0, 10_000))
    end_s = start_s + draw(st.integers(1, 30 * 3600))
    start, end = start_s * 1000, end_s * 1000
    times = draw(st.sets(st.integers(start - 30 * H, end + 8 * H), max_size=40))
    times.add(end + draw(st.integers(0, 8 * H)))  # the series goes on past the window
    rows = [
        {"coin": "BTC", "fundingRate": plain(draw(rates)), "premium": "0", "time": t} for t in times
    ]
    kind = draw(st.sampled_from(["WINDOW_SUM", "WINDOW_COUNT", "SNAPSHOT_AT"]))
    expected: Decimal | None = None
    if kind == "SNAPSHOT_AT":
        latest = None
        for r in rows:
            if end - 24 * H <= r["time"] < end and (latest is None or r["time"] > latest["time"]):
                latest = r
        expected = None if latest is None else Decimal(latest["fundingRate"])
    else:
        count, total = 0, Decimal(0)
        for r in rows:
            if start <= r["time"] < end:
                count += 1
                total += Decimal(r["fundingRate"])
        if count:
            expected = total if kind == "WINDOW_SUM" else Decimal(count)
    spec = market(
        "BTC",
        (kind, start_s, end_s),
        metric="funding",
        op=draw(ops),
        threshold=draw(st.integers(-(10**8), 10**8)),
        value_decimals=draw(decimals),
        rounding_decimals=draw(decimals),
    )
    return spec, rows, end + 8 * H + 1, expected


@SETTINGS
@given(case=funding_case(), cap=st.integers(1, 6))
def test_funding_matches_the_naive_reference(
    case: tuple[MarketSpec, list[Row], int, Decimal | None], cap: int
) -> None:
    spec, rows, now_ms, expected = case
    with patch.dict(PAGE_CAPS, {"fundingHistory": cap}):
        pages = fetch_all(spec, now_ms, fake_server(rows, cap))
        check(spec, pages, expected)


@st.composite
def fill_case(draw: st.DrawFn) -> tuple[MarketSpec, list[Row], int, Decimal | None]:
    start_s = 1_683_245_000 + draw(st.integers(0, 1000))
    end_s = start_s + draw(st.integers(1, 5))
    start, end = start_s * 1000, end_s * 1000
    times = draw(st.lists(st.integers(start - 3000, end + 3000), max_size=40))
    times = [t for i, t in enumerate(times) if times[:i].count(t) < 3]  # < cap fills per ms
    rows = [
        {"px": plain(draw(amounts)), "sz": plain(draw(amounts)), "closedPnl": plain(draw(rates))}
        | {"time": t, "coin": "BTC", "side": "B"}
        for t in times
    ]
    metric, kind = draw(
        st.sampled_from(
            [
                ("user_volume", "WINDOW_SUM"),
                ("user_volume", "WINDOW_COUNT"),
                ("user_pnl", "WINDOW_SUM"),
            ]
        )
    )
    count, notional, pnl = 0, Decimal(0), Decimal(0)
    for r in rows:
        if start <= r["time"] < end:
            count += 1
            notional += Decimal(r["px"]) * Decimal(r["sz"])
            pnl += Decimal(r["closedPnl"])
    expected: Decimal | None = None
    if count:
        expected = {"user_pnl": pnl, "WINDOW_SUM": notional, "WINDOW_COUNT": Decimal(count)}[
            "user_pnl" if metric == "user_pnl" else kind
        ]
    spec = market(
        USER,
        (kind, start_s, end_s),
        metric=metric,
        op=draw(ops),
        threshold=draw(st.integers(-(10**8), 10**8)),
        value_decimals=draw(decimals),
        rounding_decimals=draw(decimals),
    )
    return spec, rows, end + 1000, expected


@SETTINGS
@given(case=fill_case(), cap=st.integers(4, 7))
def test_fills_match_the_naive_reference(
    case: tuple[MarketSpec, list[Row], int, Decimal | None], cap: int
) -> None:
    spec, rows, now_ms, expected = case
    with patch.dict(PAGE_CAPS, {"userFillsByTime": cap}):
        pages = fetch_all(spec, now_ms, fake_server(rows, cap))
        check(spec, pages, expected)


def test_more_fills_in_one_millisecond_than_a_page_holds_is_a_page_cap_hit() -> None:
    start_s = 1_683_245_000
    rows = [{"px": "1", "sz": "1", "closedPnl": "0", "time": start_s * 1000 + 5}] * 5
    spec = market(USER, ("WINDOW_COUNT", start_s, start_s + 1), metric="user_volume")
    with patch.dict(PAGE_CAPS, {"userFillsByTime": 4}):
        pages = fetch_all(spec, start_s * 1000 + 2000, fake_server(rows, 4))
        with pytest.raises(EvaluationError) as err:
            evaluate(spec, pages)
    assert err.value.permanent
    assert "page cap hit" in err.value.reason
