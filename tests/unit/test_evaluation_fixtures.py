"""Evaluation on the recorded 2023 responses, against values worked out by hand from their rows.

Every expected value below is written from the cassette rows (quoted next to it), not computed by
the code under test. ``now_ms`` and fetch times are the cassettes' own ``date`` headers.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial

import pytest

from protocol.evaluation import EvaluationError, evaluate, plan
from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.spec import MarketSpec
from tests.fixtures import interaction, market, raw_response

pytestmark = pytest.mark.timeout(30)

CANDLES = "test_get_candles_snapshot"  # kPEPE 1h, t = 1684699200000 ... 1684782000000
FUNDING = "test_get_funding_history"  # BTC, 1038 rows, 1683849600048 ... 1689627600065
FILLS = "test_get_user_fills"  # 500 fills of USER, 1683245555699 ... 1683245884863
USER = "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"


def candles() -> RawResponse:
    return raw_response(CANDLES, "candleSnapshot")


def funding() -> RawResponse:
    return raw_response(FUNDING, "fundingHistory")


def outcomes(
    spec_at: Callable[..., MarketSpec], responses: list[RawResponse], scaled: int
) -> dict[str, int]:
    """The outcome of each operator with the threshold exactly at ``scaled``."""
    return {
        op: evaluate(spec_at(op=op, threshold=scaled), responses).outcome
        for op in ("GT", "GTE", "LT", "LTE")
    }


AT_THRESHOLD = {"GT": 0, "GTE": 1, "LT": 0, "LTE": 1}


# --- TOKEN_PRICE: close of the last candle ending at or before t_end ---------------------------


def test_price_snapshot_is_the_close_of_the_candle_ending_at_t_end() -> None:
    # t_end 1684782000 s = hour 467995 (odd): 1h is the coarsest interval it falls on.
    # Row {"T":1684781999999,"c":"0.001539",...,"t":1684778400000} ends there.
    # The next row (t 1684782000000, c "0.00154") ends after t_end and is not used.
    spec_at = partial(
        market,
        token="kPEPE",
        window=("SNAPSHOT_AT", 1684782000, 1684782000),
        value_decimals=6,
    )
    spec = spec_at()
    planned = plan(spec, now_ms=interaction(CANDLES, "candleSnapshot").date_ms)
    assert planned.requests[0].body == {
        "type": "candleSnapshot",
        "req": {
            "coin": "kPEPE",
            "interval": "1h",
            "startTime": 1684778400000,
            "endTime": 1684781999999,
        },
    }
    result = evaluate(spec, [candles()])
    assert result.value == Decimal("0.001539")
    assert result.scaled == 1539  # 0.001539 * 10**6
    assert result.rule["interval"] == "1h"
    assert result.rule["items"] == "1"
    assert outcomes(spec_at, [candles()], 1539) == AT_THRESHOLD
    assert outcomes(spec_at, [candles()], 1538) == {"GT": 1, "GTE": 1, "LT": 0, "LTE": 0}
    assert outcomes(spec_at, [candles()], 1540) == {"GT": 0, "GTE": 0, "LT": 1, "LTE": 1}


def test_off_minute_t_end_uses_the_last_candle_closed_before_it() -> None:
    # t_end 1684782029 s (00:00:29 past the hour) floors to 1684782000 s: same candle.
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684782029, 1684782029))
    assert evaluate(spec, [candles()]).value == Decimal("0.001539")


def test_scaling_rounds_half_even() -> None:
    # Row t 1684764000000 (ends at hour 467991, odd): "c":"0.001565".
    # 0.001565 * 10**5 = 156.5 -> half-even -> 156 (half-up would give 157).
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684767600, 1684767600), value_decimals=5)
    result = evaluate(spec, [candles()])
    assert (result.value, result.scaled) == (Decimal("0.001565"), 156)


def test_rounding_decimals_round_before_scaling() -> None:
    # 0.001539 rounded to 5 places (half-even) is 0.00154; scaled by 10**6: 1540.
    spec = market(
        "kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000), value_decimals=6, rounding_decimals=5
    )
    result = evaluate(spec, [candles()])
    assert (result.value, result.scaled) == (Decimal("0.001539"), 1540)
    # 0.001565 to 5 places is a tie -> 0.00156 -> 1560 at 6 decimals
    spec = market(
        "kPEPE", ("SNAPSHOT_AT", 1684767600, 1684767600), value_decimals=6, rounding_decimals=5
    )
    assert evaluate(spec, [candles()]).scaled == 1560


# --- HL_METRIC volume: sums of candle v and n ------------------------------------------------

# [1684702800, 1684717200): hours 467973 (odd) .. 467977 -> 1h, four candles:
FOUR_CANDLES = [
    # (t, v, n)
    (1684702800000, "682593287.0", 802),
    (1684706400000, "316205596.0", 424),
    (1684710000000, "235815170.0", 308),
    (1684713600000, "1943301529.0", 1913),
]


def test_volume_sum_over_four_hours() -> None:
    total = Decimal("682593287.0") + Decimal("316205596.0") + Decimal("235815170.0")
    total += Decimal("1943301529.0")
    assert total == Decimal("3177915582.0")
    spec_at = partial(
        market,
        token="kPEPE",
        window=("WINDOW_SUM", 1684702800, 1684717200),
        metric="volume",
        value_decimals=0,
    )
    result = evaluate(spec_at(), [candles()])  # type: ignore[arg-type]
    assert result.value == Decimal("3177915582.0")
    assert result.scaled == 3177915582
    assert result.rule["items"] == str(len(FOUR_CANDLES))
    assert outcomes(spec_at, [candles()], 3177915582) == AT_THRESHOLD


def test_trade_count_over_four_hours() -> None:
    assert 802 + 424 + 308 + 1913 == 3447
    spec_at = partial(
        market,
        token="kPEPE",
        window=("WINDOW_COUNT", 1684702800, 1684717200),
        metric="volume",
        value_decimals=0,
    )
    result = evaluate(spec_at(), [candles()])  # type: ignore[arg-type]
    assert (result.value, result.scaled) == (Decimal(3447), 3447)
    assert outcomes(spec_at, [candles()], 3447) == AT_THRESHOLD


def test_volume_sum_over_twenty_three_hours() -> None:
    # [1684699200, 1684782000): hours 467972 .. 467995 (odd end) -> 1h; the first 23 rows.
    volumes = [
        "520665683.0",
        "682593287.0",
        "316205596.0",
        "235815170.0",
        "1943301529.0",
        "727931405.0",
        "745882596.0",
        "317711025.0",
        "491887591.0",
        "269811863.0",
        "1075874400.0",
        "278929296.0",
        "447636970.0",
        "736537598.0",
        "225647917.0",
        "734892082.0",
        "461986408.0",
        "873852989.0",
        "468121268.0",
        "655465232.0",
        "424010634.0",
        "767341903.0",
        "521321138.0",
    ]
    assert len(volumes) == 23
    assert sum(map(Decimal, volumes)) == Decimal("13923423580.0")
    spec = market("kPEPE", ("WINDOW_SUM", 1684699200, 1684782000), metric="volume")
    result = evaluate(spec, [candles()])
    assert result.value == Decimal("13923423580.0")
    assert result.rule["items"] == "23"
    counts = market("kPEPE", ("WINDOW_COUNT", 1684699200, 1684782000), metric="volume")
    assert evaluate(counts, [candles()]).value == Decimal(17598)


def test_a_window_on_two_hour_boundaries_needs_2h_candles_not_the_recorded_1h() -> None:
    # [1684699200, 1684706400): hours 467972 and 467974, both even -> 2h is the coarsest.
    spec = market("kPEPE", ("WINDOW_SUM", 1684699200, 1684706400), metric="volume")
    assert plan(spec, now_ms=1689630204000).rule["interval"] == "2h"
    with pytest.raises(EvaluationError) as err:
        evaluate(spec, [candles()])
    assert "interval='1h'" in err.value.reason
    assert "'2h'" in err.value.reason


# --- HL_METRIC funding ---------------------------------------------------------------------

# rows 304..309 of the recorded BTC history:
#   {"fundingRate":"0.00001183","time":1686985200099}   before the window
#   {"fundingRate":"-0.00000094","time":1686988800026}  in
#   {"fundingRate":"-0.00000101","time":1686992400194}  in
#   {"fundingRate":"-0.00000593","time":1686996000010}  in
#   {"fundingRate":"-0.00000785","time":1686999600155}  in
#   {"fundingRate":"0.0000009","time":1687003200180}    at/after t_end: out (and proves the end)
FUNDING_WINDOW = (1686988800, 1687003200)


def test_funding_sum() -> None:
    total = Decimal("-0.00000094") + Decimal("-0.00000101") + Decimal("-0.00000593")
    total += Decimal("-0.00000785")
    assert total == Decimal("-0.00001573")
    spec_at = partial(
        market,
        token="BTC",
        window=("WINDOW_SUM", *FUNDING_WINDOW),
        metric="funding",
        value_decimals=8,
    )
    spec = spec_at()
    assert plan(spec, now_ms=1689630202000).requests[0].body == {
        "type": "fundingHistory",
        "coin": "BTC",
        "startTime": 1686988800000,
        "endTime": 1687003200000 + 9 * 3_600_000,
    }
    result = evaluate(spec, [funding()])
    assert (result.value, result.scaled) == (Decimal("-0.00001573"), -1573)
    assert result.rule["first_ms"] == "1686988800026"
    assert result.rule["last_ms"] == "1686999600155"
    assert outcomes(spec_at, [funding()], -1573) == AT_THRESHOLD
    assert outcomes(spec_at, [funding()], -1572) == {"GT": 0, "GTE": 0, "LT": 1, "LTE": 1}


def test_funding_count() -> None:
    spec = market("BTC", ("WINDOW_COUNT", *FUNDING_WINDOW), metric="funding", value_decimals=0)
    result = evaluate(spec, [funding()])
    assert (result.value, result.scaled) == (Decimal(4), 4)


def test_funding_snapshot_is_the_last_rate_before_t_end() -> None:
    # the last row before 1687003200000 is {"fundingRate":"-0.00000785","time":1686999600155}
    spec = market(
        "BTC", ("SNAPSHOT_AT", 1687003200, 1687003200), metric="funding", value_decimals=8
    )
    result = evaluate(spec, [funding()])
    assert (result.value, result.scaled) == (Decimal("-0.00000785"), -785)


def test_funding_window_is_half_open_on_a_row_exactly_at_the_boundary() -> None:
    # {"fundingRate":"0.00003967","time":1689253200224}
    # {"fundingRate":"0.00003583","time":1689256800000}   exactly on the hour
    # {"fundingRate":"0.00003168","time":1689260400181}
    before = market("BTC", ("WINDOW_SUM", 1689253200, 1689256800), metric="funding")
    after = market("BTC", ("WINDOW_SUM", 1689256800, 1689260400), metric="funding")
    assert evaluate(before, [funding()]).value == Decimal("0.00003967")
    assert evaluate(after, [funding()]).value == Decimal("0.00003583")
    snapshot = market("BTC", ("SNAPSHOT_AT", 1689256800, 1689256800), metric="funding")
    assert evaluate(snapshot, [funding()]).value == Decimal("0.00003967")


# --- HL_METRIC user_volume / user_pnl --------------------------------------------------------

# The recorded userFills rows with 1683245883000 <= time < 1683245885000 (the next older row,
# an ARB fill at 1683245882582, is before the window):
#   time           coin  px        sz        closedPnl
#   1683245884863  SUI   1.3189    142.7     -0.25686
#   1683245884863  SUI   1.3167    3749.1    -14.771454
#   1683245884863  SUI   1.3093    731.7     -6.980418
#   1683245884288  INJ   7.3505    17.8      -0.173372
#   1683245884288  INJ   7.3503    543.3     -5.318907
#   1683245884288  INJ   7.3482    597.9     -5.219667
#   1683245883209  DOGE  0.078255  45986.0   -3.21902
#   1683245883209  DOGE  0.078216  3356.0    -0.2517
FILL_WINDOW = (1683245883, 1683245885)


def fills_as_by_time() -> RawResponse:
    """The recorded userFills page, as the userFillsByTime page of the window (500 < 2000 rows)."""
    request = InfoRequest(
        body={
            "type": "userFillsByTime",
            "user": USER,
            "startTime": 1683245883000,
            "endTime": 1683245884999,
        }
    )
    return raw_response(FILLS, "userFills", request=request)


def test_user_volume_sums_fill_notional() -> None:
    notionals = [
        Decimal("1.3189") * Decimal("142.7"),  # 188.20703
        Decimal("1.3167") * Decimal("3749.1"),  # 4936.43997
        Decimal("1.3093") * Decimal("731.7"),  # 958.01481
        Decimal("7.3505") * Decimal("17.8"),  # 130.8389
        Decimal("7.3503") * Decimal("543.3"),  # 3993.41799
        Decimal("7.3482") * Decimal("597.9"),  # 4393.48878
        Decimal("0.078255") * Decimal("45986.0"),  # 3598.63443
        Decimal("0.078216") * Decimal("3356.0"),  # 262.492896
    ]
    assert sum(notionals) == Decimal("18461.534806")
    spec_at = partial(
        market,
        token=USER,
        window=("WINDOW_SUM", *FILL_WINDOW),
        metric="user_volume",
        value_decimals=2,
    )
    spec = spec_at()
    assert plan(spec, now_ms=1689630201000).requests[0] == fills_as_by_time().request
    result = evaluate(spec, [fills_as_by_time()])
    assert result.value == Decimal("18461.534806")
    assert result.scaled == 1846153  # 1846153.4806 -> 1846153
    assert result.rule["items"] == "8"
    assert outcomes(spec_at, [fills_as_by_time()], 1846153) == AT_THRESHOLD


def test_user_fill_count() -> None:
    spec = market(USER, ("WINDOW_COUNT", *FILL_WINDOW), metric="user_volume", value_decimals=0)
    assert evaluate(spec, [fills_as_by_time()]).scaled == 8


def test_user_pnl_sums_closed_pnl() -> None:
    pnl = [
        "-0.25686",
        "-14.771454",
        "-6.980418",
        "-0.173372",
        "-5.318907",
        "-5.219667",
        "-3.21902",
        "-0.2517",
    ]
    assert sum(map(Decimal, pnl)) == Decimal("-36.191398")
    spec_at = partial(
        market,
        token=USER.upper().replace("0X", "0x"),  # the address's case does not matter
        window=("WINDOW_SUM", *FILL_WINDOW),
        metric="user_pnl",
        value_decimals=6,
    )
    result = evaluate(spec_at(), [fills_as_by_time()])  # type: ignore[arg-type]
    assert (result.value, result.scaled) == (Decimal("-36.191398"), -36191398)
    assert outcomes(spec_at, [fills_as_by_time()], -36191398) == AT_THRESHOLD


# --- HL_METRIC open_interest (live only; no recorded metaAndAssetCtxs, so the shape of
# api/assetctxs.yaml's example) ---------------------------------------------------------------

ASSET_CTXS = (
    b'[{"universe":[{"name":"BTC","szDecimals":5},{"name":"ETH","szDecimals":4}]},'
    b'[{"dayNtlVlm":"3559323.53447","funding":"-0.0000886","markPx":"28429.3",'
    b'"openInterest":"0.22168","oraclePx":"28445.0","prevDayPx":"29368.0"},'
    b'{"dayNtlVlm":"1","funding":"0","markPx":"1","openInterest":"10.5","oraclePx":"1",'
    b'"prevDayPx":"1"}]]'
)
T_END = 1_700_000_000


def ctxs(fetched_at_ms: int) -> RawResponse:
    return RawResponse(
        request=InfoRequest(body={"type": "metaAndAssetCtxs"}),
        url="https://api.hyperliquid.xyz/info",
        fetched_at_ms=fetched_at_ms,
        status=200,
        body=ASSET_CTXS,
    )


def test_open_interest_observed_just_after_t_end() -> None:
    spec = market(
        "ETH",
        ("SNAPSHOT_AT", T_END, T_END),
        metric="open_interest",
        value_decimals=1,
        threshold=105,
    )
    assert plan(spec, now_ms=T_END * 1000).requests[0].body == {"type": "metaAndAssetCtxs"}
    result = evaluate(spec, [ctxs(T_END * 1000 + 2_000)])
    assert (result.value, result.scaled, result.outcome) == (Decimal("10.5"), 105, 0)
    assert result.rule["lag_ms"] == "2000"


def test_open_interest_too_early_is_transient_too_late_permanent() -> None:
    spec = market("BTC", ("SNAPSHOT_AT", T_END, T_END), metric="open_interest")
    with pytest.raises(EvaluationError) as early:
        evaluate(spec, [ctxs(T_END * 1000 - 1)])
    assert not early.value.permanent
    with pytest.raises(EvaluationError) as late:
        evaluate(spec, [ctxs(T_END * 1000 + 300_001)])
    assert late.value.permanent
    with pytest.raises(EvaluationError) as too_late_to_plan:
        plan(spec, now_ms=T_END * 1000 + 300_001)
    assert too_late_to_plan.value.permanent
    # the earliest timely response wins when there are several
    result = evaluate(spec, [ctxs(T_END * 1000 - 5), ctxs(T_END * 1000 + 300_000)])
    assert result.value == Decimal("0.22168")
