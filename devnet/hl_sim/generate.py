"""Deterministic synthetic market data: 1m candles, hourly funding, fills of a synthetic user.

Each coin draws from its own ``random.Random(f"{seed}:{coin}:...")`` (string seeds hash the same
in every process), so a coin's series depends only on the seed, the coin and the range::

    >>> a = generate_minutes("BTC", 0, 3_600_000, seed=7)
    >>> b = generate_minutes("BTC", 0, 3_600_000, seed=7)
    >>> len(a.c), a.c == b.c
    (60, True)

Values are integer ticks/units turned into exact decimal strings; nothing goes through float.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from devnet.hl_sim.minutes import MINUTE_MS, MinuteSeries, scaled

HOUR_MS = 60 * MINUTE_MS
DEMO_USER = "0x5151515151515151515151515151515151515151"
"""The synthetic user whose fills ``generate_fills`` makes."""


@dataclass(frozen=True)
class CoinSpec:
    """Start price (in ticks), price decimals and size decimals of a generated coin."""

    start_ticks: int
    px_decimals: int
    sz_decimals: int


COIN_SPECS: dict[str, CoinSpec] = {
    "BTC": CoinSpec(600_000, 1, 5),
    "ETH": CoinSpec(300_000, 2, 4),
    "SOL": CoinSpec(150_000, 3, 2),
}
DEFAULT_SPEC = CoinSpec(100_000, 4, 1)


def spec_of(coin: str) -> CoinSpec:
    return COIN_SPECS.get(coin, DEFAULT_SPEC)


def generate_minutes(coin: str, start_ms: int, end_ms: int, seed: int) -> MinuteSeries:
    """1m candles opening in ``[start_ms, end_ms)`` (start rounded down to a minute)."""
    spec = spec_of(coin)
    rng = random.Random(f"{seed}:{coin}:candles")
    t0 = start_ms - start_ms % MINUTE_MS
    count = max(0, -(-(end_ms - t0) // MINUTE_MS))
    o, h, lo, c, v, n = [], [], [], [], [], []
    price = spec.start_ticks
    for _ in range(count):
        step = max(1, price // 2000)
        close = max(1, price + rng.randint(-step, step))
        o.append(price)
        c.append(close)
        h.append(max(price, close) + rng.randint(0, step))
        lo.append(max(1, min(price, close) - rng.randint(0, step)))
        v.append(rng.randint(1, 10 ** (spec.sz_decimals + 2)))
        n.append(rng.randint(1, 60))
        price = close
    return MinuteSeries(coin, t0, spec.px_decimals, spec.sz_decimals, o, h, lo, c, v, n)


def generate_funding(coin: str, start_ms: int, end_ms: int, seed: int) -> list[dict[str, Any]]:
    """One row per hour in ``[start_ms, end_ms)``, a few ms after the hour like the real API."""
    rng = random.Random(f"{seed}:{coin}:funding")
    first = start_ms + (-start_ms % HOUR_MS)
    rows = []
    for hour in range(first, end_ms, HOUR_MS):
        rows.append(
            {
                "coin": coin,
                "fundingRate": _rate(rng.randint(-300, 1250)),
                "premium": _rate(rng.randint(-800, 800)),
                "time": hour + rng.randint(0, 199),
            }
        )
    return rows


def open_interest(coin: str, now_ms: int, seed: int) -> str:
    """Open interest of ``coin`` during the hour of ``now_ms``; deterministic."""
    rng = random.Random(f"{seed}:{coin}:oi:{now_ms // HOUR_MS}")
    return scaled(rng.randint(10**6, 10**9), spec_of(coin).sz_decimals)


def generate_fills(
    series: dict[str, MinuteSeries],
    start_ms: int,
    end_ms: int,
    seed: int,
    *,
    orders_per_hour: int = 2,
) -> list[dict[str, Any]]:
    """Fills of ``DEMO_USER`` over the coins of ``series``, oldest first.

    Each order fills in 1 to 3 parts that share its timestamp (as on the real exchange), so
    timestamps repeat and page boundaries can split them. Prices track the coin's minute close.
    """
    coins = sorted(s.coin for s in series.values() if s.c)
    if not coins or end_ms <= start_ms:
        return []
    rng = random.Random(f"{seed}:fills")
    hours = max(1, (end_ms - start_ms) // HOUR_MS)
    times = sorted(rng.randrange(start_ms, end_ms) for _ in range(hours * orders_per_hour))
    position = dict.fromkeys(coins, 0)
    fills = []
    for oid, when in enumerate(times, start=1_000_000_000):
        coin = rng.choice(coins)
        minutes = series[coin]
        idx = min(len(minutes.c) - 1, max(0, (when - minutes.t0) // MINUTE_MS))
        side = rng.choice("AB")
        crossed = rng.randint(0, 9) < 7
        order_hash = f"0x{rng.getrandbits(256):064x}"
        for _ in range(rng.randint(1, 3)):
            sz = rng.randint(1, 10 ** (minutes.sz_decimals + 1))
            start = position[coin]
            position[coin] = start + (sz if side == "B" else -sz)
            closing = start != 0 and (start > 0) == (side == "A")
            fills.append(
                {
                    "closedPnl": scaled(rng.randint(-(10**7), 10**7), 6) if closing else "0.0",
                    "coin": coin,
                    "crossed": crossed,
                    "dir": _direction(start, position[coin]),
                    "fee": scaled(rng.randint(0, 10**5), 6),
                    "feeToken": "USDC",
                    "hash": order_hash,
                    "oid": oid,
                    "px": scaled(minutes.c[idx] + rng.randint(-2, 2), minutes.px_decimals),
                    "side": side,
                    "startPosition": scaled(start, minutes.sz_decimals),
                    "sz": scaled(sz, minutes.sz_decimals),
                    "tid": rng.getrandbits(48),
                    "time": when,
                }
            )
    return fills


def _rate(units: int) -> str:
    """``units`` hundred-millionths as a plain, normalised decimal string (``"0.0000125"``)."""
    return format(Decimal(units).scaleb(-8).normalize(), "f")


def _direction(start: int, end: int) -> str:
    if start >= 0 and end > start:
        return "Open Long"
    if start <= 0 and end < start:
        return "Open Short"
    if start > 0:
        return "Close Long" if end >= 0 else "Long > Short"
    return "Close Short" if end <= 0 else "Short > Long"
