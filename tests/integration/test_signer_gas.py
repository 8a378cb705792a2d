"""The signer's remembered gas limits (ADR 0013): a kind of call (contract, selector) is
estimated once; later intents of that kind are simulated with the remembered limit as their gas,
and a limit the simulation finds short is estimated afresh."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.anvil import Anvil
from devnet.deploy import Deployment
from devnet.keys import OUTSIDER, RESOLVER
from devnet.rpc_proxy import RpcProxy
from protocol.messages import SubmitTx
from sources.artifacts import all_abis
from sources.evm import EvmClient
from sources.keys import SigningKey
from storage import Store
from tests.integration.test_signer_harness import (
    CHAIN,
    REQUESTER,
    SIGNER,
    ChainCfg,
    assert_gapless,
    commit_intents,
    signer_runtime,
    signer_txs,
    stored_attempts,
    stored_intents,
)

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = SigningKey.from_hex(RESOLVER.private_key)
SELECTOR = bytes.fromhex("01020304")
"""Calldata to an account with no code: its gas is all intrinsic, and grows with the data."""


@pytest.fixture
def proxied(rpc_proxy: RpcProxy) -> Iterator[EvmClient]:
    """An ``EvmClient`` through the fault proxy, with no retries of its own."""
    client = EvmClient([rpc_proxy.url], chain_id=31337, timeout_s=5, abis=all_abis(), retries=0)
    yield client
    client.close()


def data_call(n: int, data: bytes) -> SubmitTx:
    return SubmitTx(
        intent_id=f"{CHAIN}:data:{n}",
        chain=CHAIN,
        to=OUTSIDER.address,
        data=data,
        reply_to=REQUESTER,
    )


def test_a_known_kind_is_signed_without_an_estimate(
    anvil: Anvil, deployment: Deployment, rpc_proxy: RpcProxy, proxied: EvmClient, tmp_path: Path
) -> None:
    first, *later = commit_intents(deployment.oracle, 5, start=1)  # nonzero hashes: same gas
    with Store.open(tmp_path / "data") as store:
        with signer_runtime(store, proxied, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            rt.tell(SIGNER, first)
            rt.wait_for(lambda: first.intent_id in replies.confirmed(), timeout=20)
            # from now on every request holding an estimate fails: only a remembered limit works
            rpc_proxy.set_faults(error_rate=1.0, methods=("eth_estimateGas",))
            for msg in later:
                rt.tell(SIGNER, msg)
            rt.wait_for(lambda: replies.confirmed_count() == 5, timeout=20)
            assert replies.failed() == {}
        limits = {a.gas_limit for a in stored_attempts(store)}
    assert len(limits) == 1  # the first commit's estimate + margin, for all five
    assert rpc_proxy.stats()["error_5xx"] == 0  # no estimate was asked for after the first
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 5)


def one_after_another(
    evm: EvmClient, data_dir: Path, intents: list[SubmitTx]
) -> tuple[dict[str, int], dict[str, int]]:
    """Each intent signed and confirmed before the next is told; the gas limit of each one's
    attempt, and the gas each used."""
    with Store.open(data_dir) as store:
        with signer_runtime(store, evm, KEY, ChainCfg(confirmations=0)) as rt:
            replies = rt.services.extra["replies"]
            for msg in intents:
                rt.tell(SIGNER, msg)
                rt.wait_for(lambda m=msg: m.intent_id in replies.confirmed(), timeout=20)
            assert replies.failed() == {}
            assert rt.restarts(SIGNER) == 0
        gas = {a.intent_id: a.gas_limit for a in stored_attempts(store)}
        used = {i: r.inclusion.gas_used for i, r in stored_intents(store).items() if r.inclusion}
    return gas, used


def test_a_remembered_limit_found_short_is_estimated_afresh(
    anvil: Anvil, deployment: Deployment, evm: EvmClient, tmp_path: Path
) -> None:
    # market 0 commits a zero data hash: a cheaper store than any other hash, same kind of call
    (cheap,) = commit_intents(deployment.oracle, 1, start=0)
    (dear,) = commit_intents(deployment.oracle, 1, start=1)
    gas, used = one_after_another(evm, tmp_path / "data", [cheap, dear])
    assert gas[cheap.intent_id] < used[dear.intent_id] < gas[dear.intent_id]
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 2)


def test_calldata_longer_than_the_remembered_limit_allows_is_estimated_afresh(
    anvil: Anvil, evm: EvmClient, tmp_path: Path
) -> None:
    small = data_call(0, SELECTOR)
    large = data_call(1, SELECTOR + b"\xff" * 2000)  # 32,000 more intrinsic gas: the same kind
    gas, _ = one_after_another(evm, tmp_path / "data", [small, large])
    intrinsic = 21_000 + 16 * (4 + 2000)
    assert gas[small.intent_id] < intrinsic <= gas[large.intent_id]
    assert_gapless(signer_txs(anvil.rpc_url, RESOLVER.address), 2)
