"""Point-in-time answers: meta, allMids, metaAndAssetCtxs, l2Book, clearinghouseState.

A recorded answer to the same request is returned byte for byte. Generated coins extend it:
``meta`` lists them (after the recorded universe), ``allMids`` gives their last close seen by
``now``. ``metaAndAssetCtxs`` is synthesised when not recorded: generated coins get mark/oracle/
mid = last close, prevDayPx = the close 24 h earlier, dayNtlVlm = sum of close x volume over the
last 24 h, funding = the last funding rate, a seeded open interest; other coins get their recorded
mid and zeros. ``l2Book`` of a generated coin is a seeded 10-level book around its last close; of
an unknown coin it is ``null``. ``clearinghouseState`` of an unknown user is an empty account,
as the real API answers for an address that never traded.
"""

from __future__ import annotations

import json
import random
from typing import Any

from devnet.hl_sim.dataset import Dataset
from devnet.hl_sim.generate import open_interest, spec_of
from devnet.hl_sim.minutes import MINUTE_MS, scaled

DAY_MS = 1440 * MINUTE_MS
ZERO_SUMMARY = {
    "accountValue": "0.0",
    "totalMarginUsed": "0.0",
    "totalNtlPos": "0.0",
    "totalRawUsd": "0.0",
}

Answer = Any
"""Recorded ``bytes`` to send as they are, or a JSON-able value to serialise."""


def _recorded_json(ds: Dataset, body: dict[str, Any]) -> Any:
    rec = ds.recorded(body)
    return json.loads(rec.body) if rec is not None and rec.status == 200 else None


def meta(ds: Dataset, body: dict[str, Any]) -> Answer:
    rec = ds.recorded(body)
    recorded = _recorded_json(ds, {"type": "meta"}) or {"universe": []}
    names = {a["name"] for a in recorded["universe"]}
    extra = [c for c in ds.minutes if c not in names]
    if rec is not None and not extra:
        return rec.body
    universe = list(recorded["universe"])
    for coin in extra:
        universe.append({"maxLeverage": 50, "name": coin, "szDecimals": spec_of(coin).sz_decimals})
    return {**recorded, "universe": universe}


def all_mids(ds: Dataset, body: dict[str, Any], now_ms: int) -> Answer:
    rec = ds.recorded(body)
    mids = dict(_recorded_json(ds, {"type": "allMids"}) or {})
    live = {c: s for c, s in ds.minutes.items() if s.close_at(now_ms) is not None}
    if rec is not None and not live:
        return rec.body
    for coin, series in live.items():
        mids[coin] = scaled(series.close_at(now_ms) or 0, series.px_decimals)
    return mids


def meta_and_asset_ctxs(ds: Dataset, body: dict[str, Any], now_ms: int) -> Answer:
    rec = ds.recorded(body)
    if rec is not None:
        return rec.body
    universe = meta(ds, {"type": "meta"})
    if isinstance(universe, bytes):
        universe = json.loads(universe)
    mids = dict(_recorded_json(ds, {"type": "allMids"}) or {})
    names = [asset["name"] for asset in universe["universe"]]
    return [universe, [_ctx(ds, name, mids.get(name), now_ms) for name in names]]


def _ctx(ds: Dataset, coin: str, mid: str | None, now_ms: int) -> dict[str, Any]:
    series = ds.minutes.get(coin)
    close = series.close_at(now_ms) if series is not None else None
    if series is None or close is None:
        px = mid or "0.0"
        return {
            "dayNtlVlm": "0.0",
            "funding": "0.0",
            "markPx": px,
            "midPx": mid,
            "openInterest": "0.0",
            "oraclePx": px,
            "premium": "0.0",
            "prevDayPx": px,
        }
    day = series.index_range(now_ms - DAY_MS, now_ms + 1, now_ms)
    prev = series.c[day.start] if day else close
    notional = sum(series.c[i] * series.v[i] for i in day)
    funding = [r for t, r in sorted(ds.funding.get(coin, {}).items()) if t <= now_ms]
    px = scaled(close, series.px_decimals)
    return {
        "dayNtlVlm": scaled(notional, series.px_decimals + series.sz_decimals),
        "funding": funding[-1]["fundingRate"] if funding else "0.0",
        "markPx": px,
        "midPx": px,
        "openInterest": open_interest(coin, now_ms, ds.seed),
        "oraclePx": px,
        "premium": funding[-1]["premium"] if funding else "0.0",
        "prevDayPx": scaled(prev, series.px_decimals),
    }


def l2_book(ds: Dataset, body: dict[str, Any], coin: str, now_ms: int) -> Answer:
    rec = ds.recorded(body) or ds.recorded({"type": "l2Book", "coin": coin})
    if rec is not None:
        return rec.body
    series = ds.minutes.get(coin)
    close = series.close_at(now_ms) if series is not None else None
    if series is None or close is None:
        return None
    rng = random.Random(f"{ds.seed}:{coin}:book:{now_ms // MINUTE_MS}")
    step = max(1, close // 10_000)

    def level(ticks: int) -> dict[str, Any]:
        sz = rng.randint(1, 10 ** (series.sz_decimals + 2))
        px = scaled(ticks, series.px_decimals)
        return {"n": rng.randint(1, 5), "px": px, "sz": scaled(sz, series.sz_decimals)}

    bids = [level(close - step * (i + 1)) for i in range(10)]
    asks = [level(close + step * (i + 1)) for i in range(10)]
    return {"coin": coin, "levels": [bids, asks], "time": now_ms}


def clearinghouse_state(ds: Dataset, body: dict[str, Any], user: str, now_ms: int) -> Answer:
    rec = ds.recorded(body) or ds.recorded({"type": "clearinghouseState", "user": user})
    if rec is not None:
        return rec.body
    return {
        "assetPositions": [],
        "crossMaintenanceMarginUsed": "0.0",
        "crossMarginSummary": ZERO_SUMMARY,
        "marginSummary": ZERO_SUMMARY,
        "time": now_ms,
        "withdrawable": "0.0",
    }
