"""Evaluation refuses rather than guesses: unsupported pairs, no data, short data, bad bodies."""

from __future__ import annotations

import json
from decimal import Decimal
from unittest.mock import patch

import pytest

from protocol.evaluation import EvaluationError, evaluate, plan
from protocol.hyperliquid import PAGE_CAPS, InfoRequest, RawResponse
from protocol.spec import MarketSpec
from tests.fixtures import interaction, market, raw_response

pytestmark = pytest.mark.timeout(30)

USER = "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"
NOW = 1689630204000
H = 3_600_000


def fails(spec: MarketSpec, responses: list[RawResponse]) -> EvaluationError:
    with pytest.raises(EvaluationError) as err:
        evaluate(spec, responses)
    return err.value


def response(
    body: dict[str, object], data: bytes, *, fetched_at_ms: int = NOW, status: int = 200
) -> RawResponse:
    return RawResponse(
        request=InfoRequest(body=body),
        url="https://api.hyperliquid.xyz/info",
        fetched_at_ms=fetched_at_ms,
        status=status,
        body=data,
    )


# --- unsupported --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "kind"),
    [
        ("", "WINDOW_SUM"),
        ("volume", "SNAPSHOT_AT"),
        ("open_interest", "WINDOW_SUM"),
        ("user_pnl", "WINDOW_COUNT"),
        ("funding_apr", "WINDOW_SUM"),
    ],
)
def test_unsupported_subject_and_window_is_permanent(metric: str, kind: str) -> None:
    spec = market("BTC", (kind, 1_700_000_000, 1_700_003_600), metric=metric)
    with pytest.raises(EvaluationError) as planned:
        plan(spec, now_ms=NOW)
    assert planned.value.permanent
    assert "unsupported subject and window" in planned.value.reason
    assert kind in planned.value.reason
    err = fails(spec, [raw_response("test_get_candles_snapshot", "candleSnapshot")])
    assert err.permanent
    assert "unsupported" in err.reason


def test_a_user_metric_needs_a_user_address() -> None:
    spec = market("BTC", ("WINDOW_SUM", 1_700_000_000, 1_700_003_600), metric="user_volume")
    with pytest.raises(EvaluationError) as err:
        plan(spec, now_ms=NOW)
    assert err.value.permanent
    assert "not a user address" in err.value.reason


def test_a_coin_name_has_no_whitespace() -> None:
    spec = market("BTC USD", ("SNAPSHOT_AT", 1_700_000_000, 1_700_000_000))
    assert fails(spec, []).permanent


# --- no data in the window ------------------------------------------------------------------


def test_no_candles_in_the_window_is_permanent() -> None:
    spec = market("kPEPE", ("WINDOW_SUM", 1684702800, 1684717200), metric="volume")
    empty = response(plan(spec, now_ms=NOW).requests[0].body, b"[]")
    err = fails(spec, [empty])
    assert err.permanent
    assert "no 1h candles of kPEPE" in err.reason


def test_no_funding_rows_in_the_window_is_permanent() -> None:
    # 8-hourly rows then: 1683849600048 and 1683878400388 bracket [1683856800, 1683860400)
    spec = market("BTC", ("WINDOW_SUM", 1683856800, 1683860400), metric="funding")
    err = fails(spec, [raw_response("test_get_funding_history", "fundingHistory")])
    assert err.permanent
    assert "no BTC funding rows in [1683856800000, 1683860400000)" in err.reason


def test_no_fills_in_the_window_is_permanent() -> None:
    # the oldest recorded fill is at 1683245555699
    spec = market(USER, ("WINDOW_COUNT", 1683245000, 1683245100), metric="user_volume")
    page = raw_response("test_get_user_fills", "userFills", request=plan(spec, NOW).requests[0])
    err = fails(spec, [page])
    assert err.permanent
    assert "no fills" in err.reason


# --- data that ends before the window end ----------------------------------------------------


def test_candles_ending_before_t_end_are_permanent() -> None:
    # [1684778400, 1684789200) needs 1h candles at ...784000, ...782000, ...785600 (x1000);
    # the recorded series ends with t 1684782000000.
    spec = market("kPEPE", ("WINDOW_SUM", 1684778400, 1684789200), metric="volume")
    hit = interaction("test_get_candles_snapshot", "candleSnapshot")
    err = fails(spec, [hit.raw(request=plan(spec, NOW).requests[0])])
    assert err.permanent
    assert "end at 1684785600000, before the window end 1684789200000" in err.reason


def test_candles_not_asked_for_are_transient() -> None:
    # the recorded request ends at 1684784807000: the candle at 1684785600000 was never asked
    spec = market("kPEPE", ("WINDOW_SUM", 1684778400, 1684789200), metric="volume")
    err = fails(spec, [raw_response("test_get_candles_snapshot", "candleSnapshot")])
    assert not err.permanent
    assert "no response asks" in err.reason


def test_a_candle_still_open_when_fetched_is_transient() -> None:
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000))
    early = raw_response("test_get_candles_snapshot", "candleSnapshot", fetched_at_ms=1684781999999)
    err = fails(spec, [early])
    assert not err.permanent
    assert "still open" in err.reason


def test_a_full_funding_page_ending_before_t_end_is_a_page_cap_hit() -> None:
    # the recorded page has 1038 rows (>= the 500 cap) and ends at 1689627600065
    spec = market("BTC", ("WINDOW_SUM", 1689624000, 1689631200), metric="funding")
    err = fails(spec, [raw_response("test_get_funding_history", "fundingHistory")])
    assert err.permanent
    assert "page cap hit" in err.reason


def funding_rows(*times: int) -> bytes:
    return json.dumps(
        [{"coin": "BTC", "fundingRate": "0.0001", "premium": "0", "time": t} for t in times]
    ).encode()


def test_a_funding_series_that_stops_before_t_end() -> None:
    start, end = 1_700_002_800, 1_700_010_000  # hours, 2 h apart
    spec = market("BTC", ("WINDOW_SUM", start, end), metric="funding")
    request = plan(spec, NOW).requests[0].body
    body = funding_rows(start * 1000 + 5, start * 1000 + H + 5)  # nothing at or after t_end
    soon = response(request, body, fetched_at_ms=end * 1000 + H)
    err = fails(spec, [soon])
    assert not err.permanent  # the next row may not be published yet
    assert "no BTC funding row at or after the window end" in err.reason
    late = response(request, body, fetched_at_ms=end * 1000 + 9 * H)
    err = fails(spec, [late])
    assert err.permanent
    assert "series ended" in err.reason
    with_next = response(
        request, funding_rows(start * 1000 + 5, end * 1000 + 7), fetched_at_ms=end * 1000 + H
    )
    assert evaluate(spec, [with_next]).value == Decimal("0.0001")


def test_funding_fetched_before_t_end_is_transient() -> None:
    start, end = 1_700_002_800, 1_700_010_000
    spec = market("BTC", ("WINDOW_SUM", start, end), metric="funding")
    early = response(
        plan(spec, NOW).requests[0].body,
        funding_rows(start * 1000 + 5),
        fetched_at_ms=end * 1000 - 1,
    )
    err = fails(spec, [early])
    assert not err.permanent
    assert "before the window end" in err.reason


def test_a_full_fills_page_without_its_follow_up_is_a_page_cap_hit() -> None:
    spec = market(USER, ("WINDOW_COUNT", 1683245883, 1683245885), metric="user_volume")
    page = raw_response("test_get_user_fills", "userFills", request=plan(spec, NOW).requests[0])
    with patch.dict(PAGE_CAPS, {"userFillsByTime": 500}):  # the recorded page holds 500 rows
        err = fails(spec, [page])
    assert err.permanent
    assert "page cap hit" in err.reason


def test_pages_that_leave_a_gap_are_transient() -> None:
    start, end = 1_700_002_800, 1_700_010_000
    spec = market("BTC", ("WINDOW_COUNT", start, end), metric="funding")
    first = {
        "type": "fundingHistory",
        "coin": "BTC",
        "startTime": start * 1000,
        "endTime": start * 1000 + H,
    }
    second = {"type": "fundingHistory", "coin": "BTC", "startTime": start * 1000 + 2 * H}
    err = fails(
        spec,
        [
            response(first, funding_rows(start * 1000 + 5)),
            response(second, funding_rows(end * 1000 + 5)),
        ],
    )
    assert not err.permanent
    assert "uncovered" in err.reason


# --- responses that are not what the market asked for ---------------------------------------


def test_a_response_for_another_coin_is_refused() -> None:
    spec = market("BTC", ("SNAPSHOT_AT", 1684782000, 1684782000))
    err = fails(spec, [raw_response("test_get_candles_snapshot", "candleSnapshot")])
    assert not err.permanent
    assert "coin='kPEPE', this market needs 'BTC'" in err.reason


def test_a_response_of_another_type_is_refused() -> None:
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000))
    err = fails(spec, [raw_response("test_get_candles_snapshot", "meta")])
    assert "is not a candleSnapshot response" in err.reason


def test_no_responses_at_all() -> None:
    spec = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000))
    err = fails(spec, [])
    assert not err.permanent
    assert "no candleSnapshot responses" in err.reason


CANDLE = {
    "T": 1684781999999,
    "c": "0.001539",
    "h": "0.001549",
    "i": "1h",
    "l": "0.001528",
    "n": 592,
    "o": "0.001531",
    "s": "kPEPE",
    "t": 1684778400000,
    "v": "521321138.0",
}
SNAPSHOT = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000))


def candle_body(**changes: object) -> bytes:
    return json.dumps([{**CANDLE, **changes}]).encode()


def snapshot_response(data: bytes, status: int = 200) -> RawResponse:
    return response(plan(SNAPSHOT, NOW).requests[0].body, data, status=status)


def test_conflicting_candles_across_pages_are_refused() -> None:
    err = fails(
        SNAPSHOT, [snapshot_response(candle_body()), snapshot_response(candle_body(c="0.0016"))]
    )
    assert not err.permanent
    assert "two different 1h candles" in err.reason
    # an identical repeat is fine
    assert (
        evaluate(SNAPSHOT, [snapshot_response(candle_body())] * 2).value
        == evaluate(SNAPSHOT, [snapshot_response(candle_body())]).value
    )


# --- malformed bodies: transient, naming the request ----------------------------------------


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<html>502 Bad Gateway</html>", "not valid JSON"),
        (b"\xff\xfe[]", "not valid JSON"),
        (b'{"error": "busy"}', "not a JSON array"),
        (b"[1, 2]", "is not an object"),
        (candle_body(c="abc"), "is not a decimal string"),
        (candle_body(c="NaN"), "is not a decimal string"),
        (candle_body(c="1e-3"), "is not a decimal string"),
        (candle_body(c=" 0.001539"), "is not a decimal string"),
        (candle_body(c=True), "is not a decimal"),
        (candle_body(c=None), "is not a decimal"),
        (candle_body(n="592"), "is not an integer"),
        (candle_body(t=1684778400000.0), "is not an integer"),
        (json.dumps([{k: v for k, v in CANDLE.items() if k != "c"}]).encode(), "has no 'c'"),
        (b'[{"c": NaN}]', "not valid JSON"),
        (candle_body().replace(b'"n": 592', b'"n": 592, "n": 593'), "duplicate key"),
        (candle_body(i="1m"), "holds a 1m candle"),
        (candle_body(T=1684781999998), "is not one 1h interval"),
    ],
)
def test_malformed_candle_bodies(data: bytes, why: str) -> None:
    err = fails(SNAPSHOT, [snapshot_response(data)])
    assert not err.permanent
    assert why in err.reason
    assert "candleSnapshot" in err.reason  # names the request


def test_an_http_error_status_is_transient() -> None:
    err = fails(SNAPSHOT, [snapshot_response(candle_body(), status=500)])
    assert not err.permanent
    assert "HTTP status 500" in err.reason


def test_an_exact_json_number_where_a_string_is_expected_is_read_exactly() -> None:
    data = candle_body().replace(b'"c": "0.001539"', b'"c": 0.001539')
    assert b'"c": 0.001539' in data
    assert str(evaluate(SNAPSHOT, [snapshot_response(data)]).value) == "0.001539"


def test_malformed_fills_and_asset_contexts() -> None:
    spec = market(USER, ("WINDOW_SUM", 1683245883, 1683245885), metric="user_pnl")
    request = plan(spec, NOW).requests[0].body
    fill = {"px": "1", "sz": "-2", "time": 1683245883500, "closedPnl": "0"}
    err = fails(spec, [response(request, json.dumps([fill]).encode())])
    assert "negative px or sz" in err.reason
    oi = market("BTC", ("SNAPSHOT_AT", 1_700_000_000, 1_700_000_000), metric="open_interest")
    ctxs = response(
        {"type": "metaAndAssetCtxs"}, b'{"universe": []}', fetched_at_ms=1_700_000_000_500
    )
    err = fails(oi, [ctxs])
    assert not err.permanent
    assert "is not [meta, ctxs]" in err.reason
    unlisted = response(
        {"type": "metaAndAssetCtxs"},
        b'[{"universe": [{"name": "ETH"}]}, [{"openInterest": "1"}]]',
        fetched_at_ms=1_700_000_000_500,
    )
    err = fails(oi, [unlisted])
    assert err.permanent
    assert "'BTC' is not listed" in err.reason


def test_values_too_large_to_compute_exactly_are_refused() -> None:
    # a sum that needs more than 200 significant digits is never rounded silently
    spec = market("kPEPE", ("WINDOW_SUM", 1684778400, 1684782000), metric="volume")
    err = fails(spec, [snapshot_response(candle_body(v="1" + "0" * 199 + ".5"))])
    assert err.permanent
    assert "cannot be computed exactly" in err.reason
    # a value that cannot be rounded to 36 places within 400 digits
    err = fails(SNAPSHOT, [snapshot_response(candle_body(c="9" * 390))])
    assert err.permanent


def test_candles_asked_for_before_the_window_closed_are_transient() -> None:
    # fetched mid-window: the last needed candle does not exist yet
    spec = market("kPEPE", ("WINDOW_SUM", 1684778400, 1684789200), metric="volume")
    hit = interaction("test_get_candles_snapshot", "candleSnapshot")
    early = hit.raw(request=plan(spec, NOW).requests[0], fetched_at_ms=1684785600000)
    err = fails(spec, [early])
    assert not err.permanent
    assert "had not closed" in err.reason


def test_an_identical_repeat_fetched_after_the_close_wins() -> None:
    early = snapshot_response(candle_body()).model_copy(update={"fetched_at_ms": 1684781999999})
    late = snapshot_response(candle_body())
    assert evaluate(SNAPSHOT, [early, late]).value == Decimal("0.001539")
    assert evaluate(SNAPSHOT, [late, early]).value == Decimal("0.001539")


def test_only_ascii_digits_make_a_decimal() -> None:
    err = fails(SNAPSHOT, [snapshot_response(candle_body(c="\u0663"))])  # ARABIC-INDIC DIGIT THREE
    assert "is not a decimal string" in err.reason
