"""Carriers on anvil (ADR 0021): commits queued together go out as ``commitBatch``
transactions of up to ``bundle_max`` calls; each member is answered with its carrier's receipt;
a carrier that cannot succeed sends its members alone; restarts and reorgs keep every member
with its carrier. The chain is read to check that every market is committed exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from devnet.anvil import Anvil
from devnet.deploy import Deployment, send
from devnet.keys import DEPLOYER, OUTSIDER, RESOLVER
from devnet.rpc_proxy import Faults, RpcProxy
from protocol.messages import SubmitTx
from protocol.tx_records import IntentState
from sources.artifacts import all_abis, load_artifact
from sources.bundles import COMMIT_BATCH
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from supervision import Runtime
from tests.integration.test_signer import RejectingProxy, audits, committed
from tests.integration.test_signer_harness import (
    CHAIN,
    SIGNER,
    ChainCfg,
    assert_gapless,
    assert_index_exact,
    commit_intents,
    market_address,
    mine_seen,
    rpc,
    signer_runtime,
    signer_txs,
    spoil_intent,
    stored_attempts,
    stored_intents,
    txpool_pending,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEY = SigningKey.from_hex(RESOLVER.private_key)
BUNDLED = ChainCfg(confirmations=0, bundle_max=20)


@pytest.fixture
def proxy(anvil: Anvil) -> Iterator[RpcProxy]:
    """A proxy in front of anvil that starts refusing every request: intents sent meanwhile
    wait QUEUED, so that the first flush after ``heal`` takes them all at once."""
    with RpcProxy(anvil.rpc_url, seed=1, faults=Faults(error_rate=1.0)) as running:
        yield running


@pytest.fixture
def slow_evm(proxy: RpcProxy) -> Iterator[EvmClient]:
    """The signer's client, through ``proxy``."""
    client = EvmClient(
        [proxy.url], chain_id=31337, timeout_s=2.0, abis=all_abis(), cooldown_s=0.05, retries=0
    )
    yield client
    client.close()


def queue_then_heal(rt: Runtime, store: Store, proxy: RpcProxy, intents: list[SubmitTx]) -> None:
    for msg in intents:
        rt.tell(SIGNER, msg)
    ids = {m.intent_id for m in intents}

    def all_queued() -> bool:
        stored = stored_intents(store)
        return ids <= stored.keys() and all(stored[i].state is IntentState.QUEUED for i in ids)

    rt.wait_for(all_queued, timeout=20)
    proxy.set_faults(error_rate=0.0)


def confirmed_together(
    rt: Runtime, store: Store, proxy: RpcProxy, intents: list[SubmitTx], timeout: float = 20
) -> Any:
    """``queue_then_heal``, then wait until every intent is confirmed; the replies."""
    replies = rt.services.extra["replies"]
    queue_then_heal(rt, store, proxy, intents)
    rt.wait_for(lambda: replies.confirmed_count() == len(intents), timeout=timeout)
    return replies


def tx_input(anvil: Anvil, tx_hash: str) -> bytes:
    return bytes.fromhex(rpc(anvil.rpc_url, "eth_getTransactionByHash", tx_hash)["input"][2:])


def test_commits_queued_together_are_carried_and_each_is_answered(
    anvil: Anvil,
    deployment: Deployment,
    evm: EvmClient,
    proxy: RpcProxy,
    slow_evm: EvmClient,
    tmp_path: Path,
) -> None:
    intents = commit_intents(deployment.oracle, 45)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            replies = confirmed_together(rt, store, proxy, intents, timeout=30)
            first = replies.confirmed()
            state = rt.state(SIGNER)
            # three carriers (20 + 20 + 5) and their 45 members, as the index counts them
            assert state["nonce"] == 3 and state["confirmed"] == 48
            assert state["carried"] == state["carriers"] == 0

            before = len(replies.snapshot())
            rt.tell(SIGNER, intents[7])  # a member asked again: the same answer, nothing sent
            rt.wait_for(lambda: len(replies.snapshot()) == before + 1, timeout=10)
            assert replies.snapshot()[-1] == first[intents[7].intent_id]
        records = stored_intents(store)
        assert assert_index_exact(store) == {"confirmed": 48}
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, 3)
    assert {h for _, h, _ in mined} == {m.tx_hash for m in first.values()}
    assert all(tx_input(anvil, h)[:4] == COMMIT_BATCH for _, h, _ in mined)
    sizes = sorted(
        len(r.members) for r in records.values() if r.members and r.state is IntentState.CONFIRMED
    )
    assert sizes == [5, 20, 20]
    for msg in intents:
        member = records[msg.intent_id]
        carrier = records[member.bundle]
        assert msg.intent_id in carrier.members and member.inclusion == carrier.inclusion
        assert first[msg.intent_id].nonce == carrier.nonce
    assert all(committed(evm, deployment.oracle, [market_address(n) for n in range(45)]))


def test_a_carrier_that_reverts_in_simulation_sends_its_members_alone(
    anvil: Anvil, deployment: Deployment, proxy: RpcProxy, slow_evm: EvmClient, tmp_path: Path
) -> None:
    """One member would revert (its market is already committed): ``commitBatch`` is all or
    nothing, so the carrier is never signed; each call then goes alone, the doomed one fails
    for good with its own reason, and no nonce is spent on it."""
    done, *fresh = commit_intents(deployment.oracle, 4)
    again = done.model_copy(update={"intent_id": "dev:same-market-other-id"})
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            replies = rt.services.extra["replies"]
            queue_then_heal(rt, store, proxy, [done])
            rt.wait_for(lambda: replies.confirmed_count() == 1, timeout=20)
            proxy.set_faults(error_rate=1.0)
            queue_then_heal(rt, store, proxy, [again, *fresh])
            failed = rt.wait_for(lambda: replies.failed().get(again.intent_id), timeout=30)
            rt.wait_for(lambda: replies.confirmed_count() == 4, timeout=30)
            assert failed.permanent and "AlreadyCommitted" in failed.reason
            assert rt.state(SIGNER)["nonce"] == 4
            confirmed = replies.confirmed()
        assert_index_exact(store)
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, 4)  # the first commit, then the three fresh ones each alone
    assert len({confirmed[m.intent_id].tx_hash for m in fresh}) == 3


def test_a_restart_keeps_members_with_their_carrier_in_flight(
    anvil: Anvil, deployment: Deployment, proxy: RpcProxy, slow_evm: EvmClient, tmp_path: Path
) -> None:
    """The carrier is signed and sent, not mined, when the signer stops; one member's record
    is lost meanwhile. The restarted signer follows the same carrier (made again from it, the
    lost member is answered once its requester asks again): one transaction, every market."""
    anvil.set_automine(False)
    intents = commit_intents(deployment.oracle, 6)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            queue_then_heal(rt, store, proxy, intents)
            rt.wait_for(lambda: rt.state(SIGNER)["carried"] == 6, timeout=20)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=20)
        spoil_intent(store, intents[2].intent_id)
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            replies = rt.services.extra["replies"]
            state = rt.state(SIGNER)
            assert state["carriers"] == 1 and state["carried"] == 6 and state["nonce"] == 1
            for msg in intents:  # the requesters ask again after their own restart
                rt.tell(SIGNER, msg)
            anvil.mine(1)
            rt.wait_for(lambda: replies.confirmed_count() == 6, timeout=20)
            assert len({m.tx_hash for m in replies.confirmed().values()}) == 1
            assert rt.restarts(SIGNER) == 0
        # (no index check: the record was spoilt behind the index's back)
        assert {r.state for r in stored_intents(store).values()} == {IntentState.CONFIRMED}
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 1)


def test_a_reorg_under_a_confirmed_carrier_puts_its_members_back_and_confirms_them_again(
    anvil: Anvil, deployment: Deployment, proxy: RpcProxy, slow_evm: EvmClient, tmp_path: Path
) -> None:
    intents = commit_intents(deployment.oracle, 3)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            replies = confirmed_together(rt, store, proxy, intents)
            first = replies.confirmed()[intents[0].intent_id]
            anvil.reorg(anvil.block_number() - first.block_number + 1)  # drops the carrier

            def all_again() -> bool:
                got = replies.confirmed()
                return all(got[m.intent_id].block_hash != first.block_hash for m in intents)

            rt.wait_for(all_again, timeout=20)
            again = replies.confirmed()
            assert {m.tx_hash for m in again.values()} == {first.tx_hash}  # the same bytes
            state = rt.state(SIGNER)
            assert state["reorgs"] == 1 and state["confirmed"] == 4 and state["nonce"] == 1
        assert assert_index_exact(store) == {"confirmed": 4}
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 1)


def test_a_carrier_reverted_on_chain_sends_its_members_alone(
    anvil: Anvil,
    deployment: Deployment,
    w3: Web3,
    proxy: RpcProxy,
    slow_evm: EvmClient,
    tmp_path: Path,
) -> None:
    """Another resolver commits one of the markets ahead of our carrier, in the block that
    mines it: the carrier reverts on chain (nothing of it took effect). Its members are held
    with it until no reorg can undo that (``watch_blocks`` deep), then go alone: the taken one
    fails for good with its own reason, the others are confirmed."""
    oracle = w3.eth.contract(address=deployment.oracle, abi=load_artifact("SimpleOracle").abi)
    allow = oracle.encode_abi("setResolver", [OUTSIDER.address, True])
    send(w3, DEPLOYER, {"to": deployment.oracle, "data": allow})
    anvil.set_automine(False)
    intents = commit_intents(deployment.oracle, 3)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED, args={"watch_blocks": 4}) as rt:
            replies = rt.services.extra["replies"]
            queue_then_heal(rt, store, proxy, intents)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=20)
            market_1 = Web3.to_checksum_address(market_address(1))
            ahead = {
                "to": deployment.oracle,
                "data": oracle.encode_abi("commit", [market_1, 0, b"\x01" * 32]),
                "gas": 200_000,
                "maxPriorityFeePerGas": 200 * 10**9,
                "maxFeePerGas": 400 * 10**9,
                "nonce": w3.eth.get_transaction_count(OUTSIDER.address),
                "chainId": 31337,
                "type": 2,
            }
            w3.eth.send_raw_transaction(
                Account.sign_transaction(ahead, OUTSIDER.private_key).raw_transaction
            )
            anvil.mine(1)
            rt.wait_for(lambda: rt.state(SIGNER)["held"] == 1, timeout=20)
            assert rt.state(SIGNER)["carried"] == 3 and replies.snapshot() == []
            anvil.set_automine(True)
            anvil.mine(4)  # the revert is now deeper than the reorgs watched
            taken = intents[1].intent_id
            failed = rt.wait_for(lambda: replies.failed().get(taken), timeout=30)
            rt.wait_for(lambda: replies.confirmed_count() == 2, timeout=30)
            assert failed.permanent and "AlreadyCommitted" in failed.reason
            assert rt.state(SIGNER)["nonce"] == 3  # the carrier, then two alone
        records = stored_intents(store)
        assert_index_exact(store)
    (carrier,) = [r for r in records.values() if r.intent_id.startswith(f"{CHAIN}:bundle:")]
    assert carrier.state is IntentState.FAILED and carrier.members == ()
    assert carrier.inclusion is not None and carrier.inclusion.status == 0
    assert "reverted on chain" in carrier.reason
    assert all(records[m.intent_id].bundle == "" for m in intents)
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 3)


@pytest.fixture
def rejecting(anvil: Anvil) -> Iterator[RpcProxy]:
    """``proxy`` in front of a node that refuses every ``commitBatch`` transaction for good."""
    with (
        RejectingProxy(anvil.rpc_url, marker=COMMIT_BATCH, message="oversized data") as node,
        RpcProxy(node.url, seed=1, faults=Faults(error_rate=1.0)) as running,
    ):
        yield running


def test_a_rejected_carrier_holds_its_members_until_mined_after_all(
    anvil: Anvil, deployment: Deployment, rejecting: RpcProxy, tmp_path: Path
) -> None:
    """The node refuses the carrier for good, so its nonce gets a filler; but another node
    mines the carrier after all. Its members waited with it: each is answered with the
    carrier's transaction, and none of them was ever sent alone."""
    anvil.set_automine(False)
    intents = commit_intents(deployment.oracle, 3)
    with (
        EvmClient([rejecting.url], 31337, 5.0, retries=0) as evm,
        Store.open(tmp_path / "data") as store,
        signer_runtime(store, evm, KEY, BUNDLED) as rt,
    ):
        replies = rt.services.extra["replies"]
        queue_then_heal(rt, store, rejecting, intents)
        rt.wait_for(lambda: rt.state(SIGNER)["fillers"] == 1, timeout=20)
        rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=10)  # the filler
        assert rt.state(SIGNER)["held"] == 1 and replies.snapshot() == []
        attempts = stored_attempts(store)
        carrier = next(a for a in attempts if a.intent_id.startswith(f"{CHAIN}:bundle:"))
        filler = next(a for a in attempts if a.intent_id == f"{CHAIN}:filler:0")
        anvil.rpc("anvil_dropTransaction", filler.tx_hash)
        anvil.rpc("eth_sendRawTransaction", "0x" + carrier.raw.hex())  # "another node"
        mine_seen(rt, anvil, 3)
        rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=10)
        assert {m.tx_hash for m in replies.confirmed().values()} == {carrier.tx_hash}
        assert replies.failed() == {}
        state = rt.state(SIGNER)
        assert state["held"] == state["carried"] == 0 and state["nonce"] == 1
    assert [h for _, h, _ in signer_txs(anvil.rpc_url, RESOLVER.address)] == [carrier.tx_hash]


def test_a_rejected_carrier_whose_nonce_is_filled_sends_its_members_alone_once_deep(
    anvil: Anvil, deployment: Deployment, rejecting: RpcProxy, tmp_path: Path
) -> None:
    """The filler of a rejected carrier's nonce is mined: the members are held (across a
    restart) until that is deeper than the reorgs watched, then each goes alone, for good:
    a restart does not carry them again."""
    intents = commit_intents(deployment.oracle, 3)
    args = {"watch_blocks": 4}
    with (
        EvmClient([rejecting.url], 31337, 5.0, retries=0) as evm,
        Store.open(tmp_path / "data") as store,
    ):
        with signer_runtime(store, evm, KEY, BUNDLED, args=args) as rt:
            queue_then_heal(rt, store, rejecting, intents)
            rt.wait_for(lambda: stored_intents(store)[f"{CHAIN}:filler:0"].inclusion, timeout=20)
            assert rt.state(SIGNER)["held"] == 1
        with signer_runtime(store, evm, KEY, BUNDLED, args=args) as rt:
            replies = rt.services.extra["replies"]
            state = rt.state(SIGNER)
            assert state["held"] == 1 and state["carried"] == 3
            for msg in intents:
                rt.tell(SIGNER, msg)
            anvil.mine(4)
            rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=20)
            assert len({m.tx_hash for m in replies.confirmed().values()}) == 3
        with signer_runtime(store, evm, KEY, BUNDLED, args=args) as rt:
            assert rt.state(SIGNER)["carriers"] == 0
        records = stored_intents(store)
    (carrier,) = [r for r in records.values() if r.intent_id.startswith(f"{CHAIN}:bundle:")]
    assert carrier.state is IntentState.FAILED and carrier.members == ()
    assert all(records[m.intent_id].alone for m in intents)
    mined = signer_txs(anvil.rpc_url, RESOLVER.address)
    assert_gapless(mined, 4)  # the filler, then each commit alone


def test_an_unreadable_carrier_record_is_rebuilt_from_its_attempts(
    anvil: Anvil, deployment: Deployment, proxy: RpcProxy, slow_evm: EvmClient, tmp_path: Path
) -> None:
    """The carrier is signed and stored but never reached the node, and its record is lost:
    at start it is rebuilt from its members and its signed attempt, so its nonce is sent (no
    gap) and every member answered by that one transaction."""
    intents = commit_intents(deployment.oracle, 3)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            for msg in intents:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: len(stored_intents(store)) == 3, timeout=20)
            proxy.set_faults(methods=("eth_sendRawTransaction",))  # signs, cannot send
            rt.wait_for(lambda: rt.state(SIGNER)["carried"] == 3, timeout=20)
        carrier = next(i for i in stored_intents(store).values() if i.members)
        spoil_intent(store, carrier.intent_id)
        proxy.set_faults(error_rate=0.0)
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            replies = rt.services.extra["replies"]
            assert rt.state(SIGNER)["carriers"] == 1
            for msg in intents:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=20)
            (tx,) = {m.tx_hash for m in replies.confirmed().values()}
        assert [e.subject for e in audits(store, "intent_record_rebuilt")] == [carrier.intent_id]
    assert [h for _, h, _ in signer_txs(anvil.rpc_url, RESOLVER.address)] == [tx]


def test_a_member_whose_record_is_lost_after_confirmation_is_answered_from_its_carrier(
    anvil: Anvil, deployment: Deployment, proxy: RpcProxy, slow_evm: EvmClient, tmp_path: Path
) -> None:
    intents = commit_intents(deployment.oracle, 3)
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, slow_evm, KEY, BUNDLED) as rt:
            replies = confirmed_together(rt, store, proxy, intents)
            first = replies.confirmed()[intents[1].intent_id]
            spoil_intent(store, intents[1].intent_id)
            before = len(replies.snapshot())
            rt.tell(SIGNER, intents[1])
            rt.wait_for(lambda: len(replies.snapshot()) == before + 1, timeout=20)
            assert replies.snapshot()[-1] == first and rt.state(SIGNER)["nonce"] == 1
        assert stored_intents(store)[intents[1].intent_id].state is IntentState.CONFIRMED
    assert len(signer_txs(anvil.rpc_url, RESOLVER.address)) == 1


def test_a_held_carrier_keeps_its_members_when_all_their_records_are_lost(
    anvil: Anvil, deployment: Deployment, rejecting: RpcProxy, tmp_path: Path
) -> None:
    """A rejected carrier waits for its filler; every member's record is lost meanwhile. At
    start the filler names the carrier, whose record names the members: they are held again
    (made again from its calldata), so asking again sends nothing alone, and the carrier
    mined after all answers them all."""
    anvil.set_automine(False)
    intents = commit_intents(deployment.oracle, 3)
    with (
        EvmClient([rejecting.url], 31337, 5.0, retries=0) as evm,
        Store.open(tmp_path / "data") as store,
    ):
        with signer_runtime(store, evm, KEY, BUNDLED) as rt:
            queue_then_heal(rt, store, rejecting, intents)
            rt.wait_for(lambda: txpool_pending(anvil.rpc_url) == 1, timeout=20)  # the filler
        for msg in intents:
            spoil_intent(store, msg.intent_id)
        with signer_runtime(store, evm, KEY, BUNDLED) as rt:
            replies = rt.services.extra["replies"]
            state = rt.state(SIGNER)
            assert state["held"] == 1 and state["carried"] == 3 and state["nonce"] == 1
            for msg in intents:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: rt.state(SIGNER)["queued"] == 0, timeout=10)
            assert rt.state(SIGNER)["nonce"] == 1 and replies.snapshot() == []
            attempts = stored_attempts(store)
            carrier = next(a for a in attempts if a.intent_id.startswith(f"{CHAIN}:bundle:"))
            filler = next(a for a in attempts if a.intent_id == f"{CHAIN}:filler:0")
            anvil.rpc("anvil_dropTransaction", filler.tx_hash)
            anvil.rpc("eth_sendRawTransaction", "0x" + carrier.raw.hex())
            mine_seen(rt, anvil, 3)
            rt.wait_for(lambda: replies.confirmed_count() == 3, timeout=10)
            assert {m.tx_hash for m in replies.confirmed().values()} == {carrier.tx_hash}
    assert [h for _, h, _ in signer_txs(anvil.rpc_url, RESOLVER.address)] == [carrier.tx_hash]
