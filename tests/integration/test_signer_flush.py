"""The signer's flush and broadcast against a node that fails one method: what is accepted is
stored at once, what is signed is sent again until the node takes it, and nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.anvil import Anvil
from devnet.contracts import all_abis
from devnet.keys import RESOLVER
from devnet.rpc_proxy import Faults, RpcProxy
from protocol.tx_records import IntentState
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from tests.integration.test_signer_harness import (
    SIGNER,
    ChainCfg,
    assert_gapless,
    signer_runtime,
    signer_txs,
    stored_attempts,
    stored_intents,
    transfer_intents,
    txpool_pending,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEY = SigningKey.from_hex(RESOLVER.private_key)
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
                stored = rt.wait_for(lambda: len(s := stored_intents(store)) == 5 and s, timeout=10)
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
