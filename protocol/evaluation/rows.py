"""Typed rows of the paged Hyperliquid responses, read strictly from their JSON.

    >>> body = [{"t": 0, "T": 59999, "s": "BTC", "i": "1m", "o": "1", "c": "2", "h": "2",
    ...          "l": "1", "v": "0.5", "n": 3}]
    >>> candles(body, where="candleSnapshot")[0].close
    Decimal('2')

Shapes (from the recorded responses):

* candleSnapshot: ``[{t, T, s, i, o, c, h, l, v, n}]``; ``t`` opens, ``T`` is the candle's last ms;
* fundingHistory: ``[{coin, fundingRate, premium, time}]``;
* userFills / userFillsByTime: ``[{px, sz, time, closedPnl, coin, side, ...}]``.

Only the fields the evaluation uses are read; each must be present and well typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from protocol.evaluation.errors import transient
from protocol.evaluation.jsonbody import decimal_field, int_field, rows_of, str_field


@dataclass(frozen=True)
class Candle:
    open_ms: int
    last_ms: int
    coin: str
    interval: str
    close: Decimal
    volume: Decimal
    trades: int

    @property
    def time(self) -> int:
        return self.open_ms


@dataclass(frozen=True)
class FundingRow:
    time: int
    coin: str
    rate: Decimal


@dataclass(frozen=True)
class Fill:
    time: int
    px: Decimal
    sz: Decimal
    closed_pnl: Decimal


def candles(body: Any, where: str) -> list[Candle]:
    out = []
    for row in rows_of(body, where):
        trades = int_field(row, "n", where)
        if trades < 0:
            raise transient(f"response to {where}: negative trade count {trades}")
        out.append(
            Candle(
                open_ms=int_field(row, "t", where),
                last_ms=int_field(row, "T", where),
                coin=str_field(row, "s", where),
                interval=str_field(row, "i", where),
                close=decimal_field(row, "c", where),
                volume=decimal_field(row, "v", where),
                trades=trades,
            )
        )
    return out


def funding_rows(body: Any, where: str) -> list[FundingRow]:
    return [
        FundingRow(
            time=int_field(row, "time", where),
            coin=str_field(row, "coin", where),
            rate=decimal_field(row, "fundingRate", where),
        )
        for row in rows_of(body, where)
    ]


def fills(body: Any, where: str) -> list[Fill]:
    out = []
    for row in rows_of(body, where):
        fill = Fill(
            time=int_field(row, "time", where),
            px=decimal_field(row, "px", where),
            sz=decimal_field(row, "sz", where),
            closed_pnl=decimal_field(row, "closedPnl", where),
        )
        if fill.px < 0 or fill.sz < 0:
            raise transient(f"response to {where}: negative px or sz in a fill at {fill.time}")
        out.append(fill)
    return out


def row_times(request_type: str, body: Any, where: str) -> list[int]:
    """The time key of every row of a paged response (candles: their last ms)."""
    if request_type == "candleSnapshot":
        return [c.last_ms for c in candles(body, where)]
    if request_type == "fundingHistory":
        return [r.time for r in funding_rows(body, where)]
    return [f.time for f in fills(body, where)]
