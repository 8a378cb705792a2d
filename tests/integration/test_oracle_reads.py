"""Many resolvers reading the oracle at once: coalesced into batches, each answer its own."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from web3 import Web3

from devnet.anvil import Anvil
from devnet.deploy import Deployment, send
from devnet.keys import RESOLVER
from devnet.rpc_proxy import RpcProxy
from sources.artifacts import load_artifact
from sources.evm import EvmClient, EvmError, TransientError
from sources.oracle import STALE_CHAIN_TIME_S, OracleClient
from supervision.runtime import wait_for

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ORACLE = Web3().eth.contract(abi=load_artifact("SimpleOracle").abi)


def market(n: int) -> str:
    return Web3.to_checksum_address((0x1000 + n).to_bytes(20, "big"))


def test_concurrent_pending_reads_are_batched_and_answered_per_market(
    w3: Web3, deployment: Deployment, evm: EvmClient
) -> None:
    committed = {market(n): bytes([n]) * 32 for n in range(0, 40, 3)}
    for address, data_hash in committed.items():
        data = ORACLE.encode_abi("commit", [address, 1, data_hash])
        send(w3, RESOLVER, {"to": deployment.oracle, "data": data})
    oracle = OracleClient(evm, deployment.oracle)
    markets = [market(n) for n in range(40)]
    with ThreadPoolExecutor(max_workers=40) as pool:
        answers = list(pool.map(oracle.pending, markets))
    for address, got in zip(markets, answers, strict=True):
        if address in committed:
            assert got.committed and got.outcome == 1
            assert got.data_hash == "0x" + committed[address].hex()
            assert got.commit_time > 0
        else:
            assert not got.committed and got.data_hash == "0x" + "00" * 32
    assert oracle._reads.batches < len(markets)


def test_chain_time_is_the_latest_block_and_is_shared_briefly(
    w3: Web3, deployment: Deployment, evm: EvmClient
) -> None:
    oracle = OracleClient(evm, deployment.oracle, chain_time_max_age_s=0)
    assert oracle.chain_time() == w3.eth.get_block("latest")["timestamp"]
    calls = evm.health()[0].calls
    shared = OracleClient(evm, deployment.oracle, chain_time_max_age_s=60)
    with ThreadPoolExecutor(max_workers=20) as pool:
        times = set(pool.map(lambda _: shared.chain_time(), range(20)))
    assert len(times) == 1
    assert evm.health()[0].calls - calls == 1  # twenty readers, one request


def test_a_reader_arriving_while_the_head_is_read_takes_the_time_known(
    anvil: Anvil, deployment: Deployment
) -> None:
    """Under a burst hundreds of resolvers ask the chain time at once: while one reads the
    head (held 1.5 s at the proxy), the others take the older time known at once instead of
    waiting; an older time only delays a finalize. The reader's answer is then known."""
    with RpcProxy(anvil.rpc_url) as proxy:
        evm = EvmClient([proxy.url], chain_id=anvil.chain_id, timeout_s=5)
        try:
            oracle = OracleClient(evm, deployment.oracle, chain_time_max_age_s=0)
            before = oracle.chain_time()
            anvil.rpc("evm_increaseTime", 100)
            anvil.mine(1)
            proxy.set_faults(latency_s=1.5, methods=("eth_getBlockByNumber",))
            with ThreadPoolExecutor(max_workers=1) as pool:
                reader = pool.submit(oracle.chain_time)
                wait_for(lambda: proxy.stats()["latency"] == 1, timeout=5)
                started = time.monotonic()
                assert oracle.chain_time() == before
                assert time.monotonic() - started < 1.0
                after = reader.result(timeout=10)
            assert after >= before + 100
            # a time known from longer ago than STALE_CHAIN_TIME_S is not taken: waited for
            anvil.rpc("evm_increaseTime", 100)
            anvil.mine(1)
            oracle._time = (time.monotonic() - STALE_CHAIN_TIME_S - 1, after)
            with ThreadPoolExecutor(max_workers=1) as pool:
                reader = pool.submit(oracle.chain_time)
                wait_for(lambda: proxy.stats()["latency"] == 2, timeout=5)
                assert oracle.chain_time() >= after + 100
                assert reader.result(timeout=10) >= after + 100
        finally:
            evm.close()


def test_block_time_is_the_commit_blocks_timestamp_and_an_unknown_block_is_an_error(
    w3: Web3, deployment: Deployment, evm: EvmClient
) -> None:
    receipt = send(
        w3,
        RESOLVER,
        {
            "to": deployment.oracle,
            "data": ORACLE.encode_abi("commit", [market(99), 0, b"\x07" * 32]),
        },
    )
    oracle = OracleClient(evm, deployment.oracle)
    block_hash = "0x" + bytes(receipt["blockHash"]).hex()
    assert oracle.block_time(block_hash) == oracle.pending(market(99)).commit_time
    with pytest.raises(LookupError, match="does not know block"):
        oracle.block_time("0x" + "ab" * 32)
    # known: taken without the block-read lock, which another reader may hold for seconds
    with oracle._block_reads():
        assert oracle.block_time(block_hash) == oracle.pending(market(99)).commit_time


def test_an_address_that_is_not_the_oracle_is_a_clear_rpc_error(
    deployment: Deployment, evm: EvmClient
) -> None:
    """Configured with an account (no code: every call answers ``0x``), the reads raise a
    ``TransientError`` naming the call, which resolvers retry and count, never an eth-abi
    ``DecodingError`` that would crash them into a restart loop; another contract reverts."""
    oracle = OracleClient(evm, RESOLVER.address)
    with pytest.raises(TransientError, match=r"answered pending\(0x[0-9a-fA-F]{40}\) with 0"):
        oracle.pending(market(1))
    with pytest.raises(TransientError, match=r"answered disputeWindow\(\) with 0 bytes"):
        oracle.dispute_window()
    with pytest.raises(EvmError):
        OracleClient(evm, deployment.factory).pending(market(1))


def test_a_block_read_stuck_behind_another_gives_up_in_time(
    deployment: Deployment, evm: EvmClient
) -> None:
    """Callers share one block read; one that would wait longer than a call can take (a node
    trickling its answer past httpx's per-read timeout) fails as transient, not for ever."""
    oracle = OracleClient(evm, deployment.oracle)
    oracle._lock_wait_s = 0.1
    with (
        oracle._time_lock,  # another caller's read, stuck
        pytest.raises(TransientError, match=r"another block read has taken over 0\.1 s"),
    ):
        oracle.chain_time()
    assert oracle.chain_time() > 0  # and once it is done, reads go on
