"""Fee bumps on anvil with mining under the test's control: a first attempt made underpriced by a
base-fee spike, a transaction left out of full blocks, and a fee cap that holds."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account

from devnet.anvil import Anvil
from devnet.keys import DEPLOYER, OUTSIDER, RESOLVER
from devnet.rpc_proxy import RpcProxy
from protocol.tx_records import TxAttempt
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from supervision import Runtime
from tests.integration.test_signer_harness import (
    SIGNER,
    ChainCfg,
    assert_gapless,
    signer_runtime,
    signer_txs,
    stored_attempts,
    transfer_intents,
    txpool_pending,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = SigningKey.from_hex(RESOLVER.private_key)
GWEI = 10**9


def mine_until(anvil: Anvil, rt: Runtime, done: Callable[[], object], blocks: int = 30) -> object:
    """Mine one block at a time, each time until the signer has handled it, until ``done()``
    (``done`` always false: mine exactly ``blocks`` blocks and return None)."""
    for _ in range(blocks):
        value = done()
        if value:
            return value
        anvil.mine(1)
        head = anvil.block_number()
        rt.wait_for(lambda h=head: rt.state(SIGNER)["head"] >= h, timeout=10)
    if done is NEVER:
        return None
    raise AssertionError(f"not done after {blocks} blocks; signer: {rt.state(SIGNER)}")


def NEVER() -> bool:
    return False


def assert_bumped(old: TxAttempt, new: TxAttempt) -> None:
    assert new.nonce == old.nonce and new.seq == old.seq + 1
    assert new.fees.max_fee_per_gas * 100 >= old.fees.max_fee_per_gas * 120
    assert new.fees.max_priority_fee_per_gas * 100 >= old.fees.max_priority_fee_per_gas * 120


def test_an_underpriced_first_attempt_is_bumped_and_mined(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    anvil.set_automine(False)
    (intent,) = transfer_intents(1)
    cfg = ChainCfg(confirmations=1)
    with Store.open(tmp_path / "data") as store, signer_runtime(store, evm, KEY, cfg) as rt:
        replies = rt.services.extra["replies"]
        rt.tell(SIGNER, intent)
        rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=10)
        (first,) = stored_attempts(store)
        anvil.set_next_block_base_fee(100 * GWEI)  # far above what attempt 0 pays
        done = mine_until(anvil, rt, lambda: replies.confirmed().get(intent.intent_id))
        attempts = stored_attempts(store)
        assert len(attempts) >= 2 and rt.state(SIGNER)["bumps"] == len(attempts) - 1
        for old, new in itertools.pairwise(attempts):
            assert_bumped(old, new)
        assert done.tx_hash == attempts[-1].tx_hash != first.tx_hash
        assert done.nonce == 0
    assert [h for _, h, _ in signer_txs(anvil.rpc_url, RESOLVER.address)] == [done.tx_hash]


def test_a_tx_left_out_of_full_blocks_is_bumped_after_k_blocks(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    """Blocks fit one transfer and a competitor's queue fills them: after K blocks without
    inclusion the signer re-signs the same nonce with both fees +20%, and again K blocks later."""
    anvil.set_automine(False)
    anvil.rpc("evm_setBlockGasLimit", hex(30_000))
    anvil.mine(1)
    for nonce in range(8):
        tx = {
            "to": OUTSIDER.address,
            "value": 1,
            "gas": 21_000,
            "maxFeePerGas": 50 * GWEI,
            "maxPriorityFeePerGas": 3 * GWEI,
            "nonce": nonce,
            "chainId": 31337,
            "type": 2,
        }
        raw = Account.sign_transaction(tx, DEPLOYER.private_key).raw_transaction
        evm.send_raw_transaction(bytes(raw))
    (intent,) = transfer_intents(1)
    cfg = ChainCfg(confirmations=0, bump_after_blocks=3)
    with Store.open(tmp_path / "data") as store, signer_runtime(store, evm, KEY, cfg) as rt:
        replies = rt.services.extra["replies"]
        rt.wait_for(lambda: rt.state(SIGNER)["head"] == anvil.block_number(), timeout=10)
        rt.tell(SIGNER, intent)
        rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 9, timeout=10)
        counts = []
        for _ in range(7):
            mine_until(anvil, rt, NEVER, blocks=1)
            counts.append(len(stored_attempts(store)))
        assert counts == [1, 1, 2, 2, 2, 3, 3]  # a bump every K=3 blocks without inclusion
        done = mine_until(anvil, rt, lambda: replies.confirmed().get(intent.intent_id), 10)
        attempts = stored_attempts(store)
        for old, new in itertools.pairwise(attempts):
            assert_bumped(old, new)
        assert done.tx_hash == attempts[-1].tx_hash
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 1)


def test_the_fee_cap_holds_and_a_capped_tx_is_reported_stuck(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    anvil.set_automine(False)
    cap_gwei = 5
    (intent,) = transfer_intents(1)
    with (
        Store.open(tmp_path / "data") as store,
        signer_runtime(store, evm, KEY, ChainCfg(confirmations=0, max_fee_gwei=cap_gwei)) as rt,
    ):
        replies = rt.services.extra["replies"]
        rt.tell(SIGNER, intent)
        rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=10)
        anvil.set_next_block_base_fee(100 * GWEI)
        mine_until(anvil, rt, lambda: rt.state(SIGNER)["stuck"] == 1)
        mine_until(anvil, rt, NEVER, blocks=4)  # stuck stays stuck: the last attempt re-sent
        state = rt.state(SIGNER)
        assert state["stuck"] == 1 and state["in_flight"] == 1 and state["confirmed"] == 0
        capped = stored_attempts(store)
        assert all(a.fees.max_fee_per_gas <= cap_gwei * GWEI for a in capped)
        assert capped[-1].fees.max_fee_per_gas == cap_gwei * GWEI
        anvil.set_next_block_base_fee(GWEI)  # the spike is over
        done = mine_until(anvil, rt, lambda: replies.confirmed().get(intent.intent_id))
        assert rt.state(SIGNER)["stuck"] == 0
        assert stored_attempts(store) == capped  # no attempt above the cap, ever
        assert done.tx_hash == capped[-1].tx_hash
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 1)


def test_flushes_between_two_blocks_share_one_fee_quote(anvil: Anvil, tmp_path: Path) -> None:
    """A block's base fee and rewards do not change until the next block: the flushes of one
    head price alike from one ``eth_feeHistory``; a new head is quoted again."""
    anvil.set_automine(False)
    first, second, third = transfer_intents(3)
    with RpcProxy(anvil.rpc_url) as proxy:
        evm = EvmClient([proxy.url], chain_id=31337, timeout_s=5)
        try:
            with (
                Store.open(tmp_path / "data") as store,
                signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt,
            ):
                rt.wait_for(lambda: rt.state(SIGNER)["head"] == anvil.block_number(), timeout=10)
                for n, intent in enumerate((first, second), start=1):
                    rt.tell(SIGNER, intent)
                    rt.wait_for(lambda n=n: txpool_pending(anvil.rpc_url) == n, timeout=10)
                assert proxy.method_counts().get("eth_feeHistory") == 1
                a, b = stored_attempts(store)
                assert a.fees == b.fees
                mine_until(anvil, rt, NEVER, blocks=1)
                rt.tell(SIGNER, third)
                rt.wait_for(lambda: len(stored_attempts(store)) == 3, timeout=10)
                assert proxy.method_counts().get("eth_feeHistory") == 2
        finally:
            evm.close()
