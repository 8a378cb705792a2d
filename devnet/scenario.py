"""Market scenarios for the demo and the chaos tests, on the recorded Hyperliquid data.

The recorded data (``../shared/fixtures/hyperliquid``) was captured on 2023-07-17 21:43 UTC;
``REPLAY_NOW`` is just after it. The demo runs the chain and the runner at that time, so every
market below is due at once and resolves from the recordings alone::

    specs = default_specs(creator, live_t_end=REPLAY_NOW + 30)   # one of each supported pair
    specs += generated_specs(creator, 190, seed=7)                # variations for load and chaos
    specs = load_scenario("markets.toml", creator)                # or a file of MarketSpec fields

A scenario file (TOML or JSON) is a list ``markets`` of tables in the fields of ``MarketSpec``;
``creator`` and ``cutoff_time`` may be left out (the demo's creator, and ``t_end``).
"""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from protocol.spec import MarketSpec

REPLAY_NOW = 1_689_630_240
"""2023-07-17 21:44:00 UTC: a minute after the fixtures were recorded."""
FILLS_USER = "0xb7b6f3cea3f66bf525f5d8f965f6dbf6d9b017b2"
"""The user whose fills the fixtures hold (500 fills on 2023-05-05 from 00:12 to 00:18 UTC)."""

_HOUR = 3600
_KPEPE_FROM = 1_684_702_800  # 2023-05-21 21:00 UTC; kPEPE 1h candles run to 2023-05-22 19:00
_FUNDING_DAY = 1_685_577_600  # 2023-06-01 00:00 UTC; BTC funding rows every 8 hours until
_HOURLY_FUNDING_FROM = 1_686_182_400  # 2023-06-08 00:00 UTC, then every hour (to 2023-07-17)
_FILLS_HOUR = 1_683_244_800  # 2023-05-05 00:00 UTC


def _spec(  # noqa: PLR0917  (a table row of the scenario, read positionally)
    title: str,
    kind: str,
    token: str,
    window: tuple[str, int, int],
    op: str,
    threshold: int,
    decimals: int,
    creator: str,
    metric: str = "",
) -> MarketSpec:
    return MarketSpec.model_validate(
        {
            "title": title,
            "subject": {
                "kind": kind,
                "metric_id": metric,
                "token_identifier": token,
                "value_decimals": decimals,
            },
            "predicate": {"op": op, "threshold": threshold},
            "window": {"kind": window[0], "t_start": window[1], "t_end": window[2]},
            "cutoff_time": window[1],
            "creator": creator,
        }
    )


def default_specs(creator: str, live_t_end: int) -> list[MarketSpec]:
    """One market for every subject/window pair the evaluator supports; all four predicates."""
    kpepe_window = (_KPEPE_FROM, _KPEPE_FROM + 4 * _HOUR)
    funding_window = (_FUNDING_DAY, _FUNDING_DAY + 24 * _HOUR)
    fills_window = (_FILLS_HOUR, _FILLS_HOUR + _HOUR)
    snap = 1_684_782_000  # 2023-05-22 19:00 UTC, the end of a kPEPE candle
    h = HL = "HL_METRIC"
    return [
        _spec(
            "kPEPE above 0.0015 at 19:00",
            "TOKEN_PRICE",
            "kPEPE",
            ("SNAPSHOT_AT", snap, snap),
            "GT",
            150,
            5,
            creator,
        ),
        _spec(
            "kPEPE volume >= 3e9 in 4h",
            h,
            "kPEPE",
            ("WINDOW_SUM", *kpepe_window),
            "GTE",
            3_000_000_000,
            0,
            creator,
            "volume",
        ),
        _spec(
            "kPEPE trades < 3000 in 4h",
            h,
            "kPEPE",
            ("WINDOW_COUNT", *kpepe_window),
            "LT",
            3000,
            0,
            creator,
            "volume",
        ),
        _spec(
            "BTC funding <= 0 at midnight",
            h,
            "BTC",
            ("SNAPSHOT_AT", _FUNDING_DAY, _FUNDING_DAY),
            "LTE",
            0,
            8,
            creator,
            "funding",
        ),
        _spec(
            "BTC funding sum > 0 on June 1",
            h,
            "BTC",
            ("WINDOW_SUM", *funding_window),
            "GT",
            0,
            8,
            creator,
            "funding",
        ),
        _spec(
            "BTC 24 funding rows on June 1",
            HL,
            "BTC",
            ("WINDOW_COUNT", *funding_window),
            "GTE",
            24,
            0,
            creator,
            "funding",
        ),
        _spec(
            "BTC open interest > 0 now",
            HL,
            "BTC",
            ("SNAPSHOT_AT", live_t_end, live_t_end),
            "GT",
            0,
            2,
            creator,
            "open_interest",
        ),
        _spec(
            "user volume > $10k in the hour",
            HL,
            FILLS_USER,
            ("WINDOW_SUM", *fills_window),
            "GT",
            10_000,
            0,
            creator,
            "user_volume",
        ),
        _spec(
            "user fills >= 500 in the hour",
            HL,
            FILLS_USER,
            ("WINDOW_COUNT", *fills_window),
            "GTE",
            500,
            0,
            creator,
            "user_volume",
        ),
        _spec(
            "user PnL < 0 in the hour",
            HL,
            FILLS_USER,
            ("WINDOW_SUM", *fills_window),
            "LT",
            0,
            2,
            creator,
            "user_pnl",
        ),
    ]


def generated_specs(creator: str, count: int, seed: int = 7) -> list[MarketSpec]:
    """``count`` more markets over the recorded data: random windows, predicates, thresholds."""
    rng = random.Random(seed)
    ops = ["GT", "GTE", "LT", "LTE"]
    out: list[MarketSpec] = []
    for n in range(count):
        choice = n % 4
        op = rng.choice(ops)
        # kPEPE windows start and end on odd hours (_KPEPE_FROM is one): 1h candles are then
        # the coarsest that fit, and 1h candles are what the recordings hold
        if choice == 0:
            t = _KPEPE_FROM + 2 * rng.randrange(1, 12) * _HOUR
            out.append(
                _spec(
                    f"#{n} kPEPE price",
                    "TOKEN_PRICE",
                    "kPEPE",
                    ("SNAPSHOT_AT", t, t),
                    op,
                    rng.randrange(140, 170),
                    5,
                    creator,
                )
            )
        elif choice == 1:
            start = _KPEPE_FROM + 2 * rng.randrange(0, 9) * _HOUR
            end = start + 2 * rng.randrange(1, 3) * _HOUR
            out.append(
                _spec(
                    f"#{n} kPEPE volume",
                    "HL_METRIC",
                    "kPEPE",
                    ("WINDOW_SUM", start, end),
                    op,
                    rng.randrange(10**8, 4 * 10**9),
                    0,
                    creator,
                    "volume",
                )
            )
        elif choice == 2:
            # hourly rows: every window of whole hours holds some (before 2023-06-08, a window
            # shorter than 8 hours could hold none, and its market could never be resolved)
            start = _HOURLY_FUNDING_FROM + rng.randrange(0, 30 * 24) * _HOUR
            end = start + rng.randrange(1, 48) * _HOUR
            out.append(
                _spec(
                    f"#{n} BTC funding",
                    "HL_METRIC",
                    "BTC",
                    ("WINDOW_SUM", start, end),
                    op,
                    rng.randrange(-5000, 5000),
                    8,
                    creator,
                    "funding",
                )
            )
        else:
            out.append(
                _spec(
                    f"#{n} user fills",
                    "HL_METRIC",
                    FILLS_USER,
                    ("WINDOW_COUNT", _FILLS_HOUR, _FILLS_HOUR + _HOUR),
                    op,
                    rng.randrange(400, 600),
                    0,
                    creator,
                    "user_volume",
                )
            )
    return out


class ScenarioError(ValueError):
    """A scenario file that cannot be read or holds an invalid market; says which and why."""


def load_scenario(path: str | Path, creator: str) -> list[MarketSpec]:
    """The markets of a TOML or JSON scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
    markets = raw.get("markets") if isinstance(raw, dict) else raw
    if not isinstance(markets, list) or not markets:
        raise ScenarioError(f"{path}: expected a non-empty list 'markets'")
    specs = []
    for index, fields in enumerate(markets):
        if not isinstance(fields, dict):
            raise ScenarioError(f"{path}: markets[{index}] is not a table")
        full = {"creator": creator, **fields}
        window = full.get("window")
        if isinstance(window, dict) and "cutoff_time" not in full:
            full["cutoff_time"] = window.get("t_start", 0)
        try:
            specs.append(MarketSpec.model_validate(full))
        except ValidationError as exc:
            raise ScenarioError(f"{path}: markets[{index}]: {exc}") from exc
    return specs
