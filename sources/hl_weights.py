"""Hyperliquid request weight: the one table that both the client and the simulator use.

Hyperliquid allows 1200 weight per minute per IP. A request weighs a base amount by type, and some
types add weight per item returned (rounded down: 59 candles add nothing, 60 add 1)::

    >>> info_weight("allMids")
    2
    >>> info_weight("candleSnapshot", items=5000)
    103
    >>> response_weight("fundingHistory", 200, b'[{"time": 1}]')
    20
    >>> response_weight("fundingHistory", 429, b"rate limited")
    0

``response_weight`` is what a request cost once its response is known; both sides compute it from
the same bytes, so the client's count and the simulator's agree by construction. A 429 costs
nothing; a body that is not a JSON list counts no items.
"""

from __future__ import annotations

import json

WEIGHT_LIMIT_PER_MINUTE = 1200
"""Weight one client (IP) may spend per rolling minute."""

DEFAULT_WEIGHT = 20
"""Weight of every info request type not listed in ``BASE_WEIGHTS``."""

BASE_WEIGHTS: dict[str, int] = {
    "l2Book": 2,
    "allMids": 2,
    "clearinghouseState": 2,
    "orderStatus": 2,
    "spotClearinghouseState": 2,
    "exchangeStatus": 2,
    "userRole": 60,
}

ITEMS_PER_EXTRA_WEIGHT: dict[str, int] = {
    "candleSnapshot": 60,
    "userFills": 20,
    "userFillsByTime": 20,
    "fundingHistory": 20,
    "userFunding": 20,
    "historicalOrders": 20,
    "recentTrades": 20,
}
"""Types that add 1 weight per this many items returned."""


def base_weight(request_type: str) -> int:
    """Weight of a request before its response is known (what a rate limiter admits on)."""
    return BASE_WEIGHTS.get(request_type, DEFAULT_WEIGHT)


def info_weight(request_type: str, items: int = 0) -> int:
    """Total weight of a request of ``request_type`` whose response held ``items`` rows."""
    per = ITEMS_PER_EXTRA_WEIGHT.get(request_type)
    extra = items // per if per else 0
    return base_weight(request_type) + extra


def items_in(body: bytes) -> int:
    """Rows in a response body: the length of a top-level JSON list, else 0."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return 0
    return len(payload) if isinstance(payload, list) else 0


def response_weight(request_type: str, status: int, body: bytes) -> int:
    """Weight charged for one answered request: 0 for a 429, else base plus per-item extra."""
    if status == 429:
        return 0
    per = ITEMS_PER_EXTRA_WEIGHT.get(request_type)
    items = items_in(body) if per else 0
    return info_weight(request_type, items)
