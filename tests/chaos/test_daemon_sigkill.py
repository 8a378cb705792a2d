"""Chaos: the daemon as a subprocess, killed with SIGKILL at random points, restarted each time.

At the end every market is finalized; each has exactly one commit and one finalize mined by the
runner; the runner's account sent exactly two transactions per market (so no nonce was burned
and none skipped); and every outcome equals the one computed directly from the recorded data.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from eth_utils.crypto import keccak

from devnet.environment import Devnet
from devnet.hl_sim import HlSimulator
from devnet.keys import CREATOR
from devnet.scenario import REPLAY_NOW, default_specs, generated_specs
from protocol.evaluation import evaluate, next_page, plan
from protocol.spec import MarketKey, MarketSpec
from sources.hyperliquid import HyperliquidClient
from supervision import wait_for
from tests.runner_txs import assert_once_each, runner_calls

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(900), pytest.mark.xdist_group("chaos")]

MARKETS = 200
KILLS = 20
SEED = int(os.environ.get("ORACLE_RUNNER_CHAOS_SEED", "20261121"))
REPO = Path(__file__).resolve().parents[2]


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "runner", "run", "--config", str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def expected_outcomes(net: Devnet, specs: list[MarketSpec]) -> list[int]:
    """The undisturbed answer: plan, fetch and evaluate each spec directly, from a simulator of
    its own on the same data (the daemon's has just spent its minute of weight)."""
    now_ms = (REPLAY_NOW + 600) * 1000
    out = []
    with (
        HlSimulator(net.sim.dataset, weight_limit=10**9) as sim,
        HyperliquidClient(sim.url, clock_ms=lambda: now_ms) as client,
    ):
        for spec in specs:
            pages = []
            for request in plan(spec, now_ms).requests:
                pages += client.fetch_pages(request, next_page)
            out.append(evaluate(spec, pages).outcome)
    return out


def events_per_market(net: Devnet, signature: str) -> dict[str, int]:
    topic = "0x" + keccak(text=signature).hex()
    logs = net.w3.eth.get_logs(
        {"address": net.deployment.oracle, "topics": [topic], "fromBlock": 0, "toBlock": "latest"}
    )
    counts: dict[str, int] = {}
    for entry in logs:
        market = net.w3.to_checksum_address(entry["topics"][1][-20:])
        counts[market] = counts.get(market, 0) + 1
    return counts


def test_sigkill_at_random_points_loses_nothing_and_commits_once(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    log = tmp_path / "daemon.log"
    proc: subprocess.Popen[bytes] | None = None
    with Devnet.start(dispute_window_s=3) as net:
        specs = default_specs(CREATOR.address, live_t_end=REPLAY_NOW + 10**6)[:6]
        specs = [s for s in specs if s.subject.metric_id != "open_interest"]
        specs += generated_specs(CREATOR.address, MARKETS - len(specs), seed=SEED)
        keys: list[MarketKey] = net.create_markets(specs)
        # a kill can still forget the item weight of pages answered but not yet reported
        # (ADR 0008), so restarts may earn a 429 or open the breaker: the retry budget outlasts it
        config = net.config_file(
            tmp_path / "runner.toml",
            tmp_path / "data",
            max_resolvers=32,
            max_attempts=40,
            retry_cap_s=15,
        )
        try:
            for _ in range(KILLS):
                proc = start_daemon(config, log)
                try:  # a random moment in the daemon's life; it must not exit by itself
                    code = proc.wait(timeout=rng.uniform(0.5, 4.0))
                    pytest.fail(f"the daemon exited with {code}; see {log.read_text()[-2000:]}")
                except subprocess.TimeoutExpired:
                    pass
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
            proc = start_daemon(config, log)
            running = proc

            def settled() -> str | None:
                """ "finalized" once every market is, on chain; "exited" if the daemon died."""
                if running.poll() is not None:
                    return "exited"
                held = net.outcomes(keys)
                done = len(held) == len(keys) and all(f for _, _, f in held.values())
                return "finalized" if done else None

            try:  # polling the chain from outside the daemon
                outcome = wait_for(settled, timeout=300, interval=1)
            except TimeoutError as exc:
                raise AssertionError(
                    f"{exc}; the daemon's log: {log.read_text()[-2000:]}"
                ) from None
            assert outcome == "finalized", log.read_text()[-2000:]
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

        held = net.outcomes(keys)
        assert len(held) == len(keys), "a market was never committed"
        assert all(finalized for _, _, finalized in held.values()), "a market was not finalized"
        commits = events_per_market(net, "Committed(address,uint8,bytes32,address)")
        finals = events_per_market(net, "Finalized(address,uint8,bytes32)")
        once = dict.fromkeys((k.address for k in keys), 1)
        assert commits == once and finals == once
        # every transaction of the runner's key, decoded: one commit and one finalize call per
        # market (alone or carried), none reverted, the nonces 0..n-1 without a gap
        mined = runner_calls(net)
        assert_once_each(mined, keys)
        assert net.w3.eth.get_transaction_count(net.deployment.resolver) == mined.transactions
        expected = expected_outcomes(net, specs)
        assert [held[k][0] for k in keys] == expected
