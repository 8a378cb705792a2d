"""The signer behind the RPC fault proxy: 30% of HTTP requests fail (5xx, timeouts, replies lost
after the node acted, garbage). No intent is lost, none is mined twice, nonces stay gapless."""

from __future__ import annotations

from pathlib import Path

import pytest

from devnet.anvil import Anvil
from devnet.contracts import all_abis
from devnet.deploy import Deployment
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
    commit_intents,
    signer_runtime,
    signer_txs,
    stored_intents,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

INTENTS = 200
FAULTS = Faults(
    error_rate=0.10,
    timeout_rate=0.05,
    timeout_hold_s=0.6,
    drop_rate=0.10,
    malformed_rate=0.05,
)


@pytest.mark.xdist_group("signer_heavy")
@pytest.mark.parametrize("seed", [30, 31])
def test_thirty_percent_rpc_faults_lose_no_intent(
    anvil: Anvil, deployment: Deployment, tmp_path: Path, seed: int
) -> None:
    anvil.set_automine(False)
    anvil.set_interval_mining(1)
    intents = commit_intents(deployment.oracle, INTENTS)
    key = SigningKey.from_hex(RESOLVER.private_key)
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
                cfg = ChainCfg(confirmations=1, poll_s=0.05)
                args = {"max_batch": 100, "max_backoff_s": 0.5}
                with signer_runtime(store, evm, key, cfg, args=args) as rt:
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
    assert_gapless(mined, INTENTS)
    assert {h for _, h, _ in mined} == {m.tx_hash for m in replies.confirmed().values()}
