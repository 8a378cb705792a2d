"""N markets due at the same instant: time until every commit is confirmed, runner vs naive.

One devnet (anvil automining, the simulator on the recorded data) and N markets created on it,
all due when the daemon starts. The runner (the whole daemon, in-process, from discovery on) is
timed until every market is COMMITTED (its commit transaction confirmed); then ``bench/naive.py``
commits the same markets to a second oracle, one after the other, on the same devnet. Keys
``markets``, ``runner_s``, ``naive_s``, ``speedup``, ``commit_latency_p50_s``,
``commit_latency_p99_s``. Goals: ``runner_s <= 15`` for 10,000 markets, ``speedup >= 25``.
``ORACLE_RUNNER_BURST_MARKETS`` sets N (default 10,000).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.naive import resolve_all
from devnet.deploy import deploy
from devnet.environment import Devnet
from devnet.keys import CREATOR, DEV_ACCOUNTS
from devnet.scenario import REPLAY_NOW, default_specs
from ops.daemon import Daemon
from protocol.codec import unpack
from protocol.spec import MarketSpec
from storage import Store

REPO = Path(__file__).resolve().parents[1]
# The naive baseline refetches every market's data; at Hyperliquid's 1200 weight/min it would
# spend hours waiting out 429s. The simulator's limit is lifted for both, so the baseline is
# timed on its own work; the runner still keeps to its configured 1200/min budget.
SIM_WEIGHT = 10**9
BLOCK_TIME_S = 1.0
GAS_LIMIT = 2_000_000_000
MAX_RESOLVERS = int(os.environ.get("ORACLE_RUNNER_BURST_RESOLVERS", "512"))
COMMITTED = {"COMMITTED", "FINALIZE_SENT", "FINALIZED"}


def _newly_committed(store: Store, seen: dict[bytes, float]) -> list[bytes]:
    """Markets committed since the last look (decoding only the ones not seen yet)."""
    return [
        key
        for key, buf in store.raw_items("resolutions")
        if key not in seen and unpack(buf)["data"]["stage"] in COMMITTED
    ]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def runner_phase(net: Devnet, markets: int, data_dir: Path) -> tuple[dict[bytes, float], float]:
    """Start the daemon; seconds until each market's commit is confirmed, and in all."""
    config = net.config(
        data_dir,
        chain={"confirmations": 0, "poll_s": 0.2},  # a mined block is final on anvil
        max_resolvers=MAX_RESOLVERS,
        settle_delay_s=0,
    )
    seen: dict[bytes, float] = {}
    began = time.perf_counter()
    daemon = Daemon(config).start()
    try:
        assert daemon.store is not None
        deadline = began + 900
        while len(seen) < markets and time.perf_counter() < deadline:
            now = time.perf_counter() - began
            for key in _newly_committed(daemon.store, seen):
                seen[key] = now
            time.sleep(0.25)  # sampling the store from outside the daemon
        return seen, time.perf_counter() - began
    finally:
        daemon.stop()


def burst_specs(markets: int) -> tuple[list[MarketSpec], int]:
    """``markets`` specs cycling over the default scenario's closed windows; and their count."""
    base = [s for s in default_specs(CREATOR.address, REPLAY_NOW) if s.window.t_end < REPLAY_NOW]
    return [base[n % len(base)] for n in range(markets)], len(base)


def run() -> dict[str, Any]:
    markets = int(os.environ.get("ORACLE_RUNNER_BURST_MARKETS", "10000"))
    specs, distinct = burst_specs(markets)
    with (
        Devnet.start(
            block_time=BLOCK_TIME_S,
            gas_limit=GAS_LIMIT,
            dispute_window_s=3600,
            sim_weight_limit=SIM_WEIGHT,
        ) as net,
        tempfile.TemporaryDirectory(dir=REPO / "bench") as tmp,
    ):
        created = time.perf_counter()
        keys = net.create_markets(specs)
        create_s = time.perf_counter() - created
        seen, runner_s = runner_phase(net, markets, Path(tmp) / "data")
        net.anvil.set_automine(True)  # the sequential baseline's best case: see the docstring
        naive_key = DEV_ACCOUNTS[4]
        second = deploy(net.w3, dispute_window=3600, resolvers=(naive_key.address,))
        naive = resolve_all(
            net.w3,
            second.oracle,
            naive_key.private_key,
            net.sim.url,
            (REPLAY_NOW + 60) * 1000,
            list(zip(keys, specs, strict=True)),
        )
    latencies = list(seen.values())
    return {
        "markets": markets,
        "committed": len(seen),
        "runner_s": round(runner_s, 2),
        "naive_s": round(naive[-1], 2),
        "speedup": round(naive[-1] / runner_s, 2),
        "commit_latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "commit_latency_p99_s": round(_percentile(latencies, 0.99), 2) if latencies else None,
        "create_markets_s": round(create_s, 2),
        "distinct_windows": distinct,
        "max_resolvers": MAX_RESOLVERS,
        "runner_block_time_s": BLOCK_TIME_S,
        "block_gas_limit": GAS_LIMIT,
        "naive_mining": "automine",
        "sim_weight_limit_per_min": SIM_WEIGHT,
        "goal_runner_s": 15.0,
        "goal_speedup": 25.0,
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"burst: {result['committed']}/{result['markets']} commits confirmed in "
        f"{result['runner_s']} s (goal <= {result['goal_runner_s']}) "
        f"vs naive {result['naive_s']} s:"
        f" speedup {result['speedup']} (goal >= {result['goal_speedup']}); commit latency p50 "
        f"{result['commit_latency_p50_s']} s, p99 {result['commit_latency_p99_s']} s"
    )
