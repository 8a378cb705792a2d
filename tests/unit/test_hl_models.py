"""Response models: Decimal from strings only, ints from JSON ints, one clear error otherwise."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sources.hl_models import (
    ALL_MIDS,
    CANDLES,
    CLEARINGHOUSE_STATE,
    FILLS,
    L2_BOOK,
    META_AND_ASSET_CTXS,
    parse_body,
)
from sources.http_errors import MalformedResponse, PermanentSourceError

pytestmark = pytest.mark.timeout(30)

CANDLE = (
    b'{"T": 1684702799999, "c": "0.001604", "h": "0.001616", "i": "1h", "l": "0.001601",'
    b' "n": 709, "o": "0.001601", "s": "kPEPE", "t": 1684699200000, "v": "520665683.0"}'
)


def test_candle_fields_are_decimal_and_int() -> None:
    (candle,) = parse_body("candleSnapshot", b"[" + CANDLE + b"]", CANDLES)
    assert candle.close == Decimal("0.001604") and isinstance(candle.close, Decimal)
    assert candle.volume == Decimal("520665683.0")
    assert (candle.open_time, candle.close_time, candle.trades) == (
        1684699200000,
        1684702799999,
        709,
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>502</html>", "body is not JSON"),
        (b'[{"T": 1', "body is not JSON"),
        (b"", "body is not JSON"),
        (b"[NaN]", "body is not JSON"),
        (b'{"candles": []}', "Input should be a valid list"),
        (b"[" + CANDLE.replace(b'"c": "0.001604"', b'"c": 0.001604') + b"]", "decimal string"),
        (b"[" + CANDLE.replace(b'"c": "0.001604"', b'"c": "abc"') + b"]", "not a decimal string"),
        (b"[" + CANDLE.replace(b'"c": "0.001604"', b'"c": "Infinity"') + b"]", "not a finite"),
        (b"[" + CANDLE.replace(b'"n": 709', b'"n": "709"') + b"]", "valid integer"),
        (b"[" + CANDLE.replace(b'"n": 709', b'"n": 709.0') + b"]", "valid integer"),
        (b"[" + CANDLE.replace(b'"t": 1684699200000, ', b"") + b"]", "at 0.t: Field required"),
    ],
)
def test_malformed_candles_raise_one_clear_error(body: bytes, fragment: str) -> None:
    with pytest.raises(MalformedResponse) as info:
        parse_body("candleSnapshot", body, CANDLES)
    message = str(info.value)
    assert message.startswith("candleSnapshot: malformed response: ")
    assert fragment in message, message
    assert isinstance(info.value, PermanentSourceError)


def test_mids_reject_numbers_and_keep_strings_exact() -> None:
    assert parse_body("allMids", b'{"BTC": "30135.0"}', ALL_MIDS) == {"BTC": Decimal("30135.0")}
    with pytest.raises(MalformedResponse, match=r"allMids: .*at BTC"):
        parse_body("allMids", b'{"BTC": 30135}', ALL_MIDS)


def test_l2_book_null_is_none_and_three_sides_is_malformed() -> None:
    assert parse_body("l2Book", b"null", L2_BOOK) is None
    with pytest.raises(MalformedResponse, match="l2Book"):
        parse_body("l2Book", b'{"coin": "X", "time": 1, "levels": [[], [], []]}', L2_BOOK)


def test_meta_and_ctxs_pairs_and_lengths_are_checked() -> None:
    ctx = (
        b'{"dayNtlVlm": "1.0", "funding": "0.0001", "markPx": "2.0", "openInterest": "3.0",'
        b' "oraclePx": "2.0", "prevDayPx": "1.9", "midPx": null, "premium": null}'
    )
    meta = b'{"universe": [{"name": "BTC", "szDecimals": 5}]}'
    value = parse_body("metaAndAssetCtxs", b"[" + meta + b", [" + ctx + b"]]", META_AND_ASSET_CTXS)
    btc = value.ctx("BTC")
    assert btc is not None and btc.mid_px is None and btc.mark_px == Decimal("2.0")
    assert value.ctx("ETH") is None
    with pytest.raises(MalformedResponse, match="1 assets in the universe but 2 contexts"):
        parse_body(
            "metaAndAssetCtxs", b"[" + meta + b", [" + ctx + b"," + ctx + b"]]", META_AND_ASSET_CTXS
        )
    with pytest.raises(MalformedResponse, match=r"\[meta, ctxs\] pair"):
        parse_body("metaAndAssetCtxs", b"[" + meta + b"]", META_AND_ASSET_CTXS)


def test_fills_need_every_field_and_liquidation_nan_means_none() -> None:
    with pytest.raises(MalformedResponse, match=r"userFills: .*at 0\.side: Field required"):
        parse_body("userFills", b'[{"coin": "BTC", "px": "1", "sz": "1", "time": 1}]', FILLS)
    state = (
        b'{"assetPositions": [{"type": "oneWay", "position": {"coin": "BTC", "szi": "0.0",'
        b' "entryPx": null, "leverage": {"type": "cross", "value": 20}, "liquidationPx": "NaN",'
        b' "marginUsed": "0.0", "positionValue": "0.0", "returnOnEquity": "0.0",'
        b' "unrealizedPnl": "0.0"}}], "marginSummary": {"accountValue": "0.0",'
        b' "totalMarginUsed": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0"},'
        b' "crossMarginSummary": {"accountValue": "0.0", "totalMarginUsed": "0.0",'
        b' "totalNtlPos": "0.0", "totalRawUsd": "0.0"}, "withdrawable": "0.0"}'
    )
    parsed = parse_body("clearinghouseState", state, CLEARINGHOUSE_STATE)
    assert parsed.asset_positions[0].position.liquidation_px is None
