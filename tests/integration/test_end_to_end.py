"""The whole daemon on a devnet: discovery, data, evaluation, commit, dispute window, finalize."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.environment import Devnet
from devnet.hl_sim.faults import FaultConfig
from devnet.keys import CREATOR
from devnet.rpc_proxy import Faults
from devnet.scenario import REPLAY_NOW, default_specs
from protocol.messages import OperatorAction, OperatorCommand
from protocol.override import OverrideRecord, record_hash
from protocol.proof import canonical_bytes, data_hash_hex, verify
from protocol.records import JobState, Resolution
from protocol.spec import MarketSpec
from storage import Store, get_proof
from tests.integration.daemon_harness import jobs, running, wait_states
from tests.runner_txs import assert_once_each, runner_calls

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300), pytest.mark.xdist_group("e2e")]


def test_every_default_market_is_finalized_with_a_verifiable_proof(tmp_path: Path) -> None:
    with Devnet.start(dispute_window_s=3) as net:
        keys = net.create_markets(default_specs(CREATOR.address, live_t_end=REPLAY_NOW + 20))
        with running(net, tmp_path / "data") as daemon:
            wait_states(daemon, keys, {JobState.FINALIZED}, timeout=150)
            store: Store = daemon.store  # type: ignore[assignment]
            on_chain = net.outcomes(keys)
            for key in keys:
                res = store.get("resolutions", key.db_key(), Resolution)
                proof = get_proof(store, key.db_key())
                assert res is not None and proof is not None
                assert on_chain[key] == (res.outcome, res.data_hash, True)
                assert data_hash_hex(proof) == res.data_hash
                report = verify(canonical_bytes(proof), expected_hash=res.data_hash)
                assert report.ok, report.reason
                assert res.commit_tx and res.finalize_tx
            signer = daemon.runtime.state("signer:dev")  # type: ignore[union-attr]
            mined = runner_calls(net)
            assert_once_each(mined, keys)
            assert signer["nonce"] == mined.transactions


def test_rpc_and_api_faults_together_still_finalize_every_market(tmp_path: Path) -> None:
    """The RPC proxy drops, breaks and stalls calls; the simulator answers 5xx, 429, bodies that
    are not JSON and bodies cut in half: every market is finalized, with one commit and one
    finalize mined each."""
    rpc = Faults(
        error_rate=0.1, drop_rate=0.1, malformed_rate=0.05, timeout_rate=0.05, timeout_hold_s=1.0
    )
    first = ("malformed", "5xx", "truncated", "429")  # each kind surely, then at random
    hl = FaultConfig(p_5xx=0.1, p_429=0.1, p_malformed=0.05, p_truncated=0.05, seed=3, script=first)
    with Devnet.start(dispute_window_s=3, rpc_faults=rpc, sim_faults=hl) as net:
        specs = default_specs(CREATOR.address, live_t_end=REPLAY_NOW + 10**6)[:6]
        keys = net.create_markets(specs)
        with running(net, tmp_path / "data", max_attempts=20) as daemon:
            # about 20 s alone; it took minutes before RPC calls were retried within a budget
            wait_states(daemon, keys, {JobState.FINALIZED}, timeout=180)
        assert net.proxy is not None
        rpc_injected = net.proxy.stats()
        assert all(rpc_injected[kind] > 0 for kind in ("error_5xx", "drop", "malformed", "timeout"))
        injected = net.sim.stats()["faults_injected"]
        assert {"5xx", "429", "malformed", "truncated"} <= {k for k, n in injected.items() if n}
        assert all(finalized for _, _, finalized in net.outcomes(keys).values())
        assert_once_each(runner_calls(net), keys)


def test_dead_lettered_markets_can_be_overridden_or_retried(tmp_path: Path) -> None:
    with Devnet.start(dispute_window_s=3, sim_faults=FaultConfig(p_5xx=1.0)) as net:
        specs: list[MarketSpec] = default_specs(CREATOR.address, live_t_end=REPLAY_NOW)[:2]
        retried, overridden = net.create_markets(specs)
        with running(net, tmp_path / "data", max_attempts=2) as daemon:
            rt = daemon.runtime
            assert rt is not None
            wait_states(daemon, [retried, overridden], {JobState.DEAD}, timeout=120)
            assert "retry budget spent" in jobs(daemon)[retried].last_error

            reason = "Hyperliquid down; outcome settled by the venue's notice"
            override = OperatorCommand(
                action=OperatorAction.OVERRIDE,
                key=overridden,
                operator="op",
                reason=reason,
                outcome=1,
            )
            assert rt.ask("scheduler", override).ok
            wait_states(daemon, [overridden], {JobState.FINALIZED}, timeout=120)
            record = OverrideRecord(spec=specs[1], outcome=1, reason=reason)
            assert net.outcomes([overridden])[overridden] == (1, record_hash(record), True)

            net.sim.set_faults(p_5xx=0.0)
            retry = OperatorCommand(action=OperatorAction.RETRY, key=retried, operator="op")
            assert rt.ask("scheduler", retry).ok
            wait_states(daemon, [retried], {JobState.FINALIZED}, timeout=120)
