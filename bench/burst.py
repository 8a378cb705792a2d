"""N markets due at the same instant: time until every commit is confirmed, runner vs naive.

One devnet (anvil with one-second blocks and a large gas limit, the simulator on the recorded
data) and N markets created on it, all due when the daemon starts. The runner (the whole daemon,
in-process, from discovery on) is timed until every market is COMMITTED (its commit transaction
confirmed). Then anvil is switched to automine, the sequential baseline's best case (its receipt
exists as soon as it is sent), and ``bench/naive.py`` commits the same markets to a second
oracle, one after the other. Keys ``markets``, ``runner_s``, ``naive_s``, ``speedup``,
``commit_latency_p50_s``, ``commit_latency_p99_s``. Goals: ``runner_s <= 15`` for 10,000
markets, ``speedup >= 25``. See docs/adr/0006-burst-throughput.md for why the chain is set so.

``runner_cpu_s`` and ``anvil_cpu_s`` are the CPU seconds the benchmark's process (the daemon
runs in it) and anvil spent during the runner phase: with 2 cores and the GIL, they say whether
a slower figure is the code or the machine (ADR 0006).

``ORACLE_RUNNER_BURST_MARKETS`` sets N (default 10,000); ``ORACLE_RUNNER_BURST_BUNDLE`` the
runner's ``bundle_max`` (default the configuration's). ``ORACLE_RUNNER_BURST_NAIVE`` sets how
many of them the baseline commits (default all). When it is fewer than N, ``naive_s`` is the
measured time scaled linearly to N and ``naive_extrapolated`` says so; the baseline is
sequential, and its time per market only grows with the chain, so the scaled figure flatters the
baseline, not the runner. A baseline that fails part way (``naive_error``) is scaled the same
way from the markets it did commit.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.naive import resolve_all
from devnet.deploy import deploy
from devnet.environment import Devnet
from devnet.keys import CREATOR, DEV_ACCOUNTS
from devnet.scenario import REPLAY_NOW, default_specs
from ops.config import ChainConfig, LimitsConfig
from ops.daemon import Daemon
from ops.process_tuning import tune_gc
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
NAIVE_BUDGET_S = float(os.environ.get("ORACLE_RUNNER_BURST_NAIVE_BUDGET_S", "1500"))
"""The baseline stops after this long and its time is scaled from the markets it committed."""
PRUNE_HISTORY = 16
"""States anvil keeps: each copies ten thousand market contracts (see ``devnet.anvil``)."""
MAX_RESOLVERS = int(os.environ.get("ORACLE_RUNNER_BURST_RESOLVERS", "4096"))
"""The daemon's ``max_resolvers`` for the burst: 2,048 beat 512 in each of three alternating
pairs once mailboxes were cheap, and 4,096 beat 2,048 in each of four once finished resolvers
were freed at once (ADR 0006, 2026-12-06)."""
RESOLVER_THREADS = LimitsConfig().resolver_threads
"""The dispatcher the resolvers run on (ADR 0015): the daemon's default, set explicitly."""
_BUNDLE_DEFAULT = ChainConfig.model_fields["bundle_max"].default
BUNDLE_MAX = int(os.environ.get("ORACLE_RUNNER_BURST_BUNDLE", str(_BUNDLE_DEFAULT)))
"""Calls a runner transaction carries (``chains.<name>.bundle_max``, ADR 0021); 1 is the
runner of before, a transaction per commit."""
COMMITTED = {"COMMITTED", "FINALIZE_SENT", "FINALIZED"}
DEFAULT_GC_THRESHOLD = gc.get_threshold()


def _committed_in_store(store: Store) -> int:
    """Markets whose resolution record is at COMMITTED or past it (one scan of the store)."""
    return sum(
        1 for _, buf in store.raw_items("resolutions") if unpack(buf)["data"]["stage"] in COMMITTED
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of the process ``pid`` so far (Linux ``/proc``), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def runner_phase(net: Devnet, markets: int, data_dir: Path) -> tuple[list[float], float]:
    """Start the daemon; seconds until each commit is confirmed (ordered), and in all.

    The clock is the scheduler's count of confirmed commits (``commit_latency.count`` in its
    state: a market counts when its resolver's COMMITTED report, sent after the checkpoint is
    written, reaches the scheduler), asked four times a second. Reading every resolution record
    from outside the daemon instead took 7% of the process's GIL samples at 10,000 markets
    (ADR 0006). When the count is reached, one scan of the store checks it.
    """
    config = net.config(
        data_dir,
        # a mined block is final on anvil
        chain={"confirmations": 0, "poll_s": 0.2, "bundle_max": BUNDLE_MAX},
        max_resolvers=MAX_RESOLVERS,
        resolver_threads=RESOLVER_THREADS,
        settle_delay_s=0,
    )
    done: list[float] = []
    began = time.perf_counter()
    daemon = Daemon(config).start()
    tuned = tune_gc(config.limits.gc_young_threshold)  # as ``oracle-runner run`` does
    try:
        assert daemon.runtime is not None and daemon.store is not None
        deadline = began + 900
        while len(done) < markets and time.perf_counter() < deadline:
            state = daemon.runtime.state("scheduler", timeout=60)
            now = time.perf_counter() - began
            done += [now] * (int(state["commit_latency"]["count"]) - len(done))
            if len(done) < markets:
                time.sleep(0.25)  # sampling from outside the daemon
        runner_s = time.perf_counter() - began
        stored = _committed_in_store(daemon.store)
        if stored < len(done):
            raise RuntimeError(f"the scheduler counted {len(done)} commits, the store {stored}")
        return done, runner_s
    finally:
        daemon.stop()
        if tuned:  # the baseline runs on Python's defaults, as its user would
            gc.unfreeze()
            gc.set_threshold(*DEFAULT_GC_THRESHOLD)


def burst_specs(markets: int) -> tuple[list[MarketSpec], int]:
    """``markets`` specs cycling over the default scenario's closed windows; and their count."""
    base = [s for s in default_specs(CREATOR.address, REPLAY_NOW) if s.window.t_end < REPLAY_NOW]
    return [base[n % len(base)] for n in range(markets)], len(base)


def run() -> dict[str, Any]:
    markets = int(os.environ.get("ORACLE_RUNNER_BURST_MARKETS", "10000"))
    naive_n = min(markets, int(os.environ.get("ORACLE_RUNNER_BURST_NAIVE", str(markets))))
    specs, distinct = burst_specs(markets)
    with (
        Devnet.start(
            block_time=BLOCK_TIME_S,
            gas_limit=GAS_LIMIT,
            dispute_window_s=3600,
            sim_weight_limit=SIM_WEIGHT,
            prune_history=PRUNE_HISTORY,
        ) as net,
        tempfile.TemporaryDirectory(dir=REPO / "bench") as tmp,
    ):
        created = time.perf_counter()
        keys = net.create_markets(specs)
        create_s = time.perf_counter() - created
        anvil_pid = net.anvil.process.pid if net.anvil.process is not None else -1
        cpu_before, anvil_before = time.process_time(), process_cpu_s(anvil_pid)
        latencies, runner_s = runner_phase(net, markets, Path(tmp) / "data")
        runner_cpu_s = time.process_time() - cpu_before
        anvil_after = process_cpu_s(anvil_pid)
        anvil_cpu_s = (
            anvil_after - anvil_before
            if anvil_after is not None and anvil_before is not None
            else None
        )
        print(f"burst: runner {len(latencies)}/{markets} in {runner_s:.2f} s", file=sys.stderr)
        net.anvil.set_automine(True)  # the sequential baseline's best case: see the docstring
        naive_key = DEV_ACCOUNTS[4]
        second = deploy(net.w3, dispute_window=3600, resolvers=(naive_key.address,))
        naive: list[float] = []
        naive_error = ""
        try:
            resolve_all(
                net.w3,
                second.oracle,
                naive_key.private_key,
                net.sim.url,
                (REPLAY_NOW + 60) * 1000,
                list(zip(keys, specs, strict=True))[:naive_n],
                done=naive,
                budget_s=NAIVE_BUDGET_S,
            )
        except Exception as exc:  # keep what was timed; say why it stopped
            alive = net.anvil.process is not None and net.anvil.process.poll() is None
            naive_error = f"{type(exc).__name__}: {exc}"[:300] + f" (anvil alive: {alive})"
            print(f"burst: naive stopped after {len(naive)}: {naive_error}", file=sys.stderr)
        if not naive:
            raise RuntimeError(f"the naive baseline timed no market: {naive_error}")
        naive_n = len(naive)
    naive_s = naive[-1] * markets / naive_n
    return {
        "markets": markets,
        "committed": len(latencies),
        "runner_s": round(runner_s, 2),
        "naive_s": round(naive_s, 2),
        "speedup": round(naive_s / runner_s, 2),
        "commit_latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "commit_latency_p99_s": round(_percentile(latencies, 0.99), 2) if latencies else None,
        "runner_cpu_s": round(runner_cpu_s, 2),
        "anvil_cpu_s": round(anvil_cpu_s, 2) if anvil_cpu_s is not None else None,
        "create_markets_s": round(create_s, 2),
        "distinct_windows": distinct,
        "max_resolvers": MAX_RESOLVERS,
        "bundle_max": BUNDLE_MAX,
        "resolver_threads": RESOLVER_THREADS,
        "runner_block_time_s": BLOCK_TIME_S,
        "block_gas_limit": GAS_LIMIT,
        "naive_mining": "automine",
        "anvil_prune_history": PRUNE_HISTORY,
        "naive_markets_timed": naive_n,
        "naive_s_timed": round(naive[-1], 2),
        "naive_extrapolated": naive_n < markets,
        "naive_error": naive_error,
        "naive_budget_s": NAIVE_BUDGET_S,
        "sim_weight_limit_per_min": SIM_WEIGHT,
        "goal_runner_s": 15.0,
        "goal_speedup": 25.0,
    }


def summary(result: dict[str, Any]) -> str:
    scaled = (
        f" (scaled from {result['naive_markets_timed']})" if result["naive_extrapolated"] else ""
    )
    return (
        f"burst: {result['committed']}/{result['markets']} commits confirmed in "
        f"{result['runner_s']} s (goal <= {result['goal_runner_s']}) "
        f"vs naive {result['naive_s']} s"
        f"{scaled}:"
        f" speedup {result['speedup']} (goal >= {result['goal_speedup']}); commit latency p50 "
        f"{result['commit_latency_p50_s']} s, p99 {result['commit_latency_p99_s']} s"
    )
