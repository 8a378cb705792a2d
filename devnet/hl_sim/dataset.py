"""What the simulator knows: recorded answers, rows of the time-filtered types, generated series.

Recorded answers (meta, allMids, l2Book, clearinghouseState, ...) are kept as exact bytes under
their request; candles, funding rows and fills are kept as rows so the simulator can filter them
by time and cap them like the real API. Build one from cassettes, generate one, merge them
(the right-hand side wins where both know the same thing)::

    ds = Dataset.from_cassettes(Path("../shared/fixtures/hyperliquid/cassettes"))
    ds = ds.merged(Dataset.generate(["BTC", "ETH"], start_ms, end_ms, seed=1))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devnet.hl_sim.minutes import MinuteSeries

Row = dict[str, Any]


def request_key(body: dict[str, Any]) -> str:
    """Canonical text of a request body (sorted keys, lower-case user) to index answers by."""
    norm = dict(body)
    if isinstance(norm.get("user"), str):
        norm["user"] = norm["user"].lower()
    return json.dumps(norm, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Recorded:
    """A response exactly as recorded."""

    status: int
    body: bytes


@dataclass
class CandleRows:
    """Recorded candles of one coin and interval, by open time, and when they were recorded."""

    rows: dict[int, Row]
    as_of_ms: int


@dataclass
class Dataset:
    """Recorded and generated Hyperliquid data; see the module docstring."""

    exact: dict[str, Recorded] = field(default_factory=dict)
    candles: dict[tuple[str, str], CandleRows] = field(default_factory=dict)
    minutes: dict[str, MinuteSeries] = field(default_factory=dict)
    funding: dict[str, dict[int, Row]] = field(default_factory=dict)
    fills: dict[str, list[Row]] = field(default_factory=dict)
    seed: int = 0

    @classmethod
    def from_cassettes(cls, directory: Path | str) -> Dataset:
        """Load every ``*.yaml``/``*.yml`` vcrpy cassette in ``directory``."""
        from devnet.hl_sim.cassettes import load_cassettes

        return load_cassettes(Path(directory))

    @classmethod
    def generate(
        cls,
        coins: list[str],
        start_ms: int,
        end_ms: int,
        seed: int,
        *,
        user: str | None = None,
        orders_per_hour: int = 2,
    ) -> Dataset:
        """Seeded 1m candles and hourly funding for ``coins`` and fills of a synthetic user."""
        from devnet.hl_sim import generate as gen

        ds = cls(seed=seed)
        for coin in coins:
            ds.minutes[coin] = gen.generate_minutes(coin, start_ms, end_ms, seed)
            ds.add_funding(gen.generate_funding(coin, start_ms, end_ms, seed))
        fills = gen.generate_fills(
            ds.minutes, start_ms, end_ms, seed, orders_per_hour=orders_per_hour
        )
        ds.add_fills((user or gen.DEMO_USER).lower(), fills)
        return ds

    def add_funding(self, rows: list[Row]) -> None:
        for row in rows:
            self.funding.setdefault(row["coin"], {})[row["time"]] = row

    def add_fills(self, user: str, rows: list[Row]) -> None:
        """Add fills of ``user``; kept oldest first, the order within one timestamp preserved."""
        held = self.fills.setdefault(user.lower(), [])
        seen = {json.dumps(r, sort_keys=True) for r in held}
        for row in sorted(rows, key=lambda r: r["time"]):
            key = json.dumps(row, sort_keys=True)
            if key not in seen:
                seen.add(key)
                held.append(row)
        held.sort(key=lambda r: r["time"])

    def add_candles(self, coin: str, interval: str, rows: list[Row], as_of_ms: int) -> None:
        held = self.candles.setdefault((coin, interval), CandleRows({}, as_of_ms))
        held.as_of_ms = max(held.as_of_ms, as_of_ms)
        for row in rows:
            held.rows[row["t"]] = row

    def merged(self, other: Dataset) -> Dataset:
        """A new dataset with everything of both; ``other`` wins on the same key or time."""
        out = Dataset(exact={**self.exact, **other.exact}, seed=other.seed or self.seed)
        out.minutes = {**self.minutes, **other.minutes}
        for src in (self, other):
            for (coin, interval), held in src.candles.items():
                out.add_candles(coin, interval, list(held.rows.values()), held.as_of_ms)
            for rows in src.funding.values():
                out.add_funding(list(rows.values()))
            for user, fills in src.fills.items():
                out.add_fills(user, fills)
        return out

    def recorded(self, body: dict[str, Any]) -> Recorded | None:
        """The recorded answer to exactly this request, if any."""
        return self.exact.get(request_key(body))

    def summary(self) -> str:
        """One line for logs: how much of each kind the dataset holds."""
        return (
            f"{len(self.exact)} recorded answers, {len(self.candles)} recorded candle series, "
            f"{len(self.minutes)} generated coins, {sum(map(len, self.funding.values()))} funding "
            f"rows, {sum(map(len, self.fills.values()))} fills of {len(self.fills)} users"
        )
