"""``next_page``: the follow-up request of a full page, per paged type."""

from __future__ import annotations

import json
from unittest.mock import patch

import pytest

from protocol.evaluation import EvaluationError, next_page
from protocol.hyperliquid import PAGE_CAPS, InfoRequest

pytestmark = pytest.mark.timeout(30)

H = 3_600_000


def candle_request(start: int, end: int) -> InfoRequest:
    req = {"coin": "BTC", "interval": "1h", "startTime": start, "endTime": end}
    return InfoRequest(body={"type": "candleSnapshot", "req": req})


def candles(*opens: int) -> bytes:
    rows = [
        {"t": t, "T": t + H - 1, "s": "BTC", "i": "1h", "o": "1", "c": "1", "h": "1", "l": "1"}
        | {"v": "1", "n": 1}
        for t in opens
    ]
    return json.dumps(rows).encode()


def test_a_page_that_is_not_full_has_no_follow_up() -> None:
    assert next_page(candle_request(0, 10 * H - 1), candles(0, H)) is None


def test_a_full_candle_page_continues_at_the_next_open() -> None:
    with patch.dict(PAGE_CAPS, {"candleSnapshot": 2}):
        following = next_page(candle_request(0, 10 * H - 1), candles(0, H))
        assert following == candle_request(2 * H, 10 * H - 1)
        # the last page reaches endTime: done
        assert next_page(candle_request(8 * H, 10 * H - 1), candles(8 * H, 9 * H)) is None


def test_a_full_funding_page_continues_past_its_last_row() -> None:
    body = json.dumps(
        [{"coin": "BTC", "fundingRate": "0", "premium": "0", "time": t} for t in (10, 3_600_020)]
    ).encode()
    request = InfoRequest(body={"type": "fundingHistory", "coin": "BTC", "startTime": 10})
    with patch.dict(PAGE_CAPS, {"fundingHistory": 2}):
        assert next_page(request, body) == InfoRequest(
            body={"type": "fundingHistory", "coin": "BTC", "startTime": 3_600_021}
        )
        bounded = InfoRequest(body={**request.body, "endTime": 3_600_020})
        assert next_page(bounded, body) is None


def fills(*times: int) -> bytes:
    rows = [{"px": "1", "sz": "1", "closedPnl": "0", "time": t} for t in times]
    return json.dumps(rows).encode()


def test_a_full_fills_page_repeats_its_last_millisecond() -> None:
    request = InfoRequest(
        body={"type": "userFillsByTime", "user": "0x" + "ab" * 20, "startTime": 5, "endTime": 99}
    )
    with patch.dict(PAGE_CAPS, {"userFillsByTime": 3}):
        following = next_page(request, fills(7, 5, 12))  # any row order
        assert following == InfoRequest(body={**request.body, "startTime": 12})
        # a full page all at startTime makes no progress: stop (evaluate reports the cap)
        assert (
            next_page(InfoRequest(body={**request.body, "startTime": 12}), fills(12, 12, 12))
            is None
        )


def test_unpaged_types_have_no_follow_up() -> None:
    assert next_page(InfoRequest(body={"type": "metaAndAssetCtxs"}), b"[{}, []]") is None


def test_a_bad_page_body_is_a_transient_error() -> None:
    with pytest.raises(EvaluationError) as err:
        next_page(candle_request(0, H), b"not json")
    assert not err.value.permanent
    assert "candleSnapshot" in err.value.reason
