"""The signer behind the RPC fault proxy: 30% of HTTP requests fail (5xx, timeouts, replies lost
after the node acted, garbage), or every request of one method does (its flush cannot price, its
broadcasts are refused). No intent is lost, none is mined twice, nonces stay gapless."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.anvil import Anvil
from devnet.deploy import Deployment
from devnet.keys import RESOLVER
from devnet.rpc_proxy import Faults, RpcProxy
from protocol.tx_records import IntentState
from sources.artifacts import all_abis
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from tests.integration.test_signer_harness import (
    SIGNER,
    ChainCfg,
    assert_gapless,
    commit_intents,
    signer_runtime,
    signer_txs,
    stored_attempts,
    stored_intents,
    transfer_intents,
    txpool_pending,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

KEY = SigningKey.from_hex(RESOLVER.private_key)
INTENTS = 200
FAULTS = Faults(
    error_rate=0.10,
    timeout_rate=0.05,
    timeout_hold_s=0.6,
    drop_rate=0.10,
    malformed_rate=0.05,
)


@pytest.mark.xdist_group("signer_heavy")
@pytest.mark.parametrize(("seed", "bundle_max"), [(30, 1), (31, 20)])
def test_thirty_percent_rpc_faults_lose_no_intent(
    anvil: Anvil, deployment: Deployment, tmp_path: Path, seed: int, bundle_max: int
) -> None:
    """Each commit alone, or carried by ``commitBatch`` transactions (ADR 0021)."""
    anvil.set_automine(False)
    anvil.set_interval_mining(1)
    intents = commit_intents(deployment.oracle, INTENTS)
    with RpcProxy(anvil.rpc_url, seed=seed, faults=FAULTS) as proxy:
        evm = EvmClient(
            [proxy.url],
            chain_id=31337,
            timeout_s=0.4,
            abis=all_abis(),
            cooldown_s=0.2,
            max_batch=20,
            retries=0,  # every fault reaches the signer: its own handling is what is tested
        )
        try:
            with Store.open(tmp_path / "data") as store:
                cfg = ChainCfg(confirmations=1, poll_s=0.05, bundle_max=bundle_max)
                args = {"max_batch": 100, "max_backoff_s": 0.5}
                with signer_runtime(store, evm, KEY, cfg, args=args) as rt:
                    replies = rt.services.extra["replies"]
                    for msg in intents:
                        rt.tell(SIGNER, msg)
                    rt.wait_for(lambda: replies.confirmed_count() == INTENTS, timeout=100)
                    state = rt.state(SIGNER)
                    assert rt.restarts(SIGNER) == 0  # transient errors never crash it
                    assert replies.failed() == {}
                records = stored_intents(store)
        finally:
            evm.close()
        stats = proxy.stats()
    assert sum(stats[k] for k in ("error_5xx", "timeout", "drop", "malformed")) > 20, stats
    assert state["rpc_errors"] > 10, state  # and they did hit the signer
    assert {r.state for r in records.values()} == {IntentState.CONFIRMED}
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, state["nonce"])
    assert {h for _, h, _ in mined} == {m.tx_hash for m in replies.confirmed().values()}
    assert (state["nonce"] == INTENTS) == (bundle_max == 1)  # carried: fewer transactions


CFG = ChainCfg(confirmations=0, poll_s=0.05)
ARGS = {"max_backoff_s": 0.2}


def client(url: str) -> EvmClient:
    return EvmClient([url], chain_id=31337, timeout_s=2.0, abis=all_abis(), retries=0)


def test_intents_the_flush_cannot_price_are_stored_queued(anvil: Anvil, tmp_path: Path) -> None:
    """Every ``eth_feeHistory`` fails: the accepted intents are written QUEUED by the flush that
    could not sign them, and signed once the node answers again."""
    failing = Faults(error_rate=1.0, methods=("eth_feeHistory",))
    with RpcProxy(anvil.rpc_url, seed=1, faults=failing) as proxy:
        evm = client(proxy.url)
        try:
            with (
                Store.open(tmp_path / "data") as store,
                signer_runtime(store, evm, KEY, CFG, args=ARGS) as rt,
            ):
                replies = rt.services.extra["replies"]
                rt.wait_for(lambda: rt.state(SIGNER)["phase"] == "running", timeout=10)
                for msg in transfer_intents(5):
                    rt.tell(SIGNER, msg)
                rt.wait_for(lambda: len(stored_intents(store)) == 5, timeout=10)
                stored = stored_intents(store)
                assert {i.state for i in stored.values()} == {IntentState.QUEUED}
                assert rt.state(SIGNER)["nonce"] == 0 and proxy.stats()["error_5xx"] > 0
                proxy.set_faults(error_rate=0.0)
                rt.wait_for(lambda: replies.confirmed_count() == 5, timeout=20)
                assert rt.restarts(SIGNER) == 0
        finally:
            evm.close()
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 5)


def test_broadcasts_the_node_refused_are_sent_again(anvil: Anvil, tmp_path: Path) -> None:
    """Every ``eth_sendRawTransaction`` fails: the attempts are signed and stored, none reaches
    the pool, and on the next head after the node takes them again the same bytes are sent and
    mined."""
    failing = Faults(error_rate=1.0, methods=("eth_sendRawTransaction",))
    with RpcProxy(anvil.rpc_url, seed=2, faults=failing) as proxy:
        evm = client(proxy.url)
        try:
            with Store.open(tmp_path / "data") as store:
                with signer_runtime(store, evm, KEY, CFG, args=ARGS) as rt:
                    replies = rt.services.extra["replies"]
                    for msg in transfer_intents(5):
                        rt.tell(SIGNER, msg)
                    state = rt.wait_for(
                        lambda: (s := rt.state(SIGNER))["rpc_errors"] > 0 and s, timeout=10
                    )
                    assert state["nonce"] == 5 and state["in_flight"] == 5
                    assert "503" in state["last_error"]
                    assert txpool_pending(anvil.rpc_url) == 0
                    assert proxy.stats()["error_5xx"] >= 1
                    proxy.set_faults(error_rate=0.0)
                    anvil.mine(1)  # a new head: what was not sent goes out again
                    rt.wait_for(lambda: replies.confirmed_count() == 5, timeout=20)
                    assert rt.restarts(SIGNER) == 0
                attempts = stored_attempts(store)
        finally:
            evm.close()
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, 5)
    assert {h for _, h, _ in mined} == {a.tx_hash for a in attempts}  # the stored bytes
