"""The Hyperliquid weight table (README figures), shared by client and simulator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.process_tuning import limit_recursion
from sources.hl_models import MalformedResponse, load_json
from sources.hl_weights import (
    ITEMS_PER_EXTRA_WEIGHT,
    base_weight,
    info_weight,
    items_in,
    response_weight,
)

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize(
    ("request_type", "weight"),
    [
        ("l2Book", 2),
        ("allMids", 2),
        ("clearinghouseState", 2),
        ("orderStatus", 2),
        ("spotClearinghouseState", 2),
        ("exchangeStatus", 2),
        ("userRole", 60),
        ("meta", 20),
        ("metaAndAssetCtxs", 20),
        ("candleSnapshot", 20),
        ("fundingHistory", 20),
        ("userFills", 20),
        ("somethingNew", 20),
    ],
)
def test_base_weights_follow_the_readme(request_type: str, weight: int) -> None:
    assert base_weight(request_type) == weight
    assert info_weight(request_type) == weight


@pytest.mark.parametrize(
    ("request_type", "items", "weight"),
    [
        ("candleSnapshot", 59, 20),
        ("candleSnapshot", 60, 21),
        ("candleSnapshot", 5000, 20 + 83),
        ("fundingHistory", 19, 20),
        ("fundingHistory", 20, 21),
        ("fundingHistory", 500, 45),
        ("userFillsByTime", 2000, 120),
        ("userFills", 40, 22),
        ("userFunding", 20, 21),
        ("historicalOrders", 20, 21),
        ("recentTrades", 20, 21),
        ("allMids", 1000, 2),
        ("meta", 1000, 20),
    ],
)
def test_items_add_weight_rounded_down(request_type: str, items: int, weight: int) -> None:
    assert info_weight(request_type, items) == weight


def test_response_weight_counts_list_items_and_nothing_for_429() -> None:
    body = b"[" + b",".join([b"{}"] * 45) + b"]"
    assert response_weight("fundingHistory", 200, body) == 22
    assert response_weight("fundingHistory", 429, body) == 0
    assert response_weight("fundingHistory", 503, b"service unavailable") == 20
    assert response_weight("fundingHistory", 200, body[:10]) == 20  # truncated: no items
    assert response_weight("allMids", 200, b'{"BTC": "1"}') == 2


def test_items_in_only_counts_top_level_lists() -> None:
    assert items_in(b"[1, 2, 3]") == 3
    assert items_in(b'{"a": [1, 2]}') == 0
    assert items_in(b"not json") == 0
    assert items_in(b"\xff\xfe") == 0


@given(
    request_type=st.sampled_from(sorted(ITEMS_PER_EXTRA_WEIGHT)),
    items=st.integers(min_value=0, max_value=100_000),
)
def test_item_weight_is_monotone_and_exact(request_type: str, items: int) -> None:
    per = ITEMS_PER_EXTRA_WEIGHT[request_type]
    assert info_weight(request_type, items) == base_weight(request_type) + items // per
    assert info_weight(request_type, items + 1) >= info_weight(request_type, items)


def test_a_body_nested_past_the_parser_is_counted_as_no_rows_and_is_malformed() -> None:
    limit_recursion()  # as Daemon.start does
    deep = b"[" * 100_000 + b"]" * 100_000
    assert items_in(deep) == 0
    with pytest.raises(MalformedResponse, match=r"^candleSnapshot: malformed response: body is"):
        load_json("candleSnapshot", deep)
