"""The reference contracts on a real anvil: markets, commit, dispute window, finalize."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from eth_abi.abi import decode
from web3 import Web3
from web3.logs import DISCARD

from devnet.anvil import Anvil
from devnet.deploy import Deployment, create_market, create_market_raw, send
from devnet.keys import OUTSIDER, RESOLVER, DevAccount
from protocol.market_abi import (
    MARKET_CREATED_TOPIC,
    MarketAbiError,
    decode_market_created,
    decode_market_params,
    spec_to_params,
)
from protocol.spec import (
    Economics,
    MarketSpec,
    OracleSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
)
from sources.artifacts import CONTRACTS_DIR, load_artifact
from sources.evm import EvmClient, RevertError

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ORACLE = Web3().eth.contract(abi=load_artifact("SimpleOracle").abi)
MARKET = Web3().eth.contract(abi=load_artifact("Market").abi)
FACTORY = Web3().eth.contract(abi=load_artifact("MarketFactory").abi)
DATA_HASH = bytes.fromhex("ab" * 32)


def call(evm: EvmClient, to: str, contract: Any, fn: str, *args: Any, sender: str = "") -> Any:
    data = contract.encode_abi(fn, list(args))
    out = evm.call({"to": to, "data": data, **({"from": sender} if sender else {})})
    types = [o["type"] for o in contract.get_function_by_name(fn).abi["outputs"]]
    values = decode(types, out)
    return values[0] if len(values) == 1 else values


def transact(w3: Web3, who: DevAccount, to: str, contract: Any, fn: str, *args: Any) -> Any:
    return send(w3, who, {"to": to, "data": contract.encode_abi(fn, list(args))})


def rich_spec(creator: str) -> MarketSpec:
    return MarketSpec(
        title="ETH weekly volume ≥ 1.5M",
        description="sum of candle volume over the week",
        subject=Subject(
            kind=SubjectKind.HL_METRIC, metric_id="volume", token_identifier="ETH", value_decimals=6
        ),
        predicate=Predicate(op=PredicateOp.GTE, threshold=-1_500_000_000_000),
        window=Window(kind=WindowKind.WINDOW_SUM, t_start=1_700_000_000, t_end=1_700_604_800),
        oracle=OracleSpec(fallback_source_id="sim", rounding_decimals=8),
        cutoff_time=1_699_999_000,
        creator=creator,
        economics=Economics(
            collateral_token="0x00000000000000000000000000000000000000aa",
            fee_bps=30,
            initial_liquidity=10**24,
        ),
    )


def test_created_market_decodes_back_to_the_exact_spec(
    w3: Web3, deployment: Deployment, evm: EvmClient
) -> None:
    spec = rich_spec(RESOLVER.address)  # any address may be the creator: the factory trusts it
    market, tx_hash = create_market(w3, deployment.factory, spec)
    logs = evm.get_logs(deployment.factory, [MARKET_CREATED_TOPIC], deployment.block, "latest")
    assert len(logs) == 1 and logs[0].transaction_hash == tx_hash
    decoded = decode_market_created(logs[0].topics, logs[0].data)
    assert (decoded.market, decoded.creator, decoded.spec) == (market, spec.creator, spec)

    params_call = evm.call({"to": market, "data": MARKET.encode_abi("params", [])})
    assert decode_market_params(params_call) == spec
    paramsof = FACTORY.encode_abi("paramsOf", [market])
    assert decode_market_params(evm.call({"to": deployment.factory, "data": paramsof})) == spec

    second, _ = create_market(w3, deployment.factory, rich_spec(OUTSIDER.address))
    assert call(evm, deployment.factory, FACTORY, "marketCount") == 2
    assert [
        Web3.to_checksum_address(a)
        for a in call(evm, deployment.factory, FACTORY, "allMarkets", 0, 10)
    ] == [market, second]
    assert list(call(evm, deployment.factory, FACTORY, "allMarkets", 1, 1)) == [second.lower()]
    assert list(call(evm, deployment.factory, FACTORY, "allMarkets", 5, 1)) == []
    assert Web3.to_checksum_address(call(evm, deployment.factory, FACTORY, "markets", 1)) == second
    assert call(evm, market, MARKET, "oracle").lower() == deployment.oracle.lower()
    with pytest.raises(RevertError) as err:
        call(evm, deployment.factory, FACTORY, "paramsOf", OUTSIDER.address)
    assert err.value.error_name == "UnknownMarket"


def test_invalid_spec_reaches_the_chain_and_fails_to_decode(
    w3: Web3, deployment: Deployment, evm: EvmClient, make_spec: Callable[..., MarketSpec]
) -> None:
    params = list(spec_to_params(make_spec()))
    params[3] = (9, 1)  # predicate op 9 does not exist: the factory does not check
    create_market_raw(w3, deployment.factory, tuple(params))
    (log,) = evm.get_logs(deployment.factory, [MARKET_CREATED_TOPIC], 0, "latest")
    with pytest.raises(MarketAbiError, match="unknown predicate op code 9"):
        decode_market_created(log.topics, log.data)


def test_commit_rules_and_pending_view(
    w3: Web3, deployment: Deployment, evm: EvmClient, make_spec: Callable[..., MarketSpec]
) -> None:
    market, _ = create_market(w3, deployment.factory, make_spec())
    oracle = deployment.oracle
    assert call(evm, oracle, ORACLE, "pending", market) == (0, b"\0" * 32, 0, False, False)

    with pytest.raises(RevertError) as err:
        call(evm, oracle, ORACLE, "commit", market, 1, DATA_HASH, sender=OUTSIDER.address)
    assert err.value.error_name == "NotResolver"
    assert err.value.reason == f"NotResolver(caller={OUTSIDER.address})"
    with pytest.raises(RevertError, match=r"InvalidOutcome\(outcome=2\)"):
        call(evm, oracle, ORACLE, "commit", market, 2, DATA_HASH, sender=RESOLVER.address)

    receipt = transact(w3, RESOLVER, oracle, ORACLE, "commit", market, 1, DATA_HASH)
    block = w3.eth.get_block(receipt["blockNumber"])
    (committed,) = ORACLE.events.Committed().process_receipt(receipt)
    assert committed["args"]["resolver"] == RESOLVER.address
    assert call(evm, oracle, ORACLE, "pending", market) == (
        1,
        DATA_HASH,
        block["timestamp"],
        True,
        False,
    )
    assert call(evm, oracle, ORACLE, "committer", market) == RESOLVER.address.lower()

    with pytest.raises(RevertError) as err:
        call(evm, oracle, ORACLE, "commit", market, 0, DATA_HASH, sender=RESOLVER.address)
    assert err.value.error_name == "AlreadyCommitted"
    assert err.value.reason == f"AlreadyCommitted(market={market})"
    assert err.value.error_args == (market,)
    with pytest.raises(RevertError, match="NotOwner"):
        call(evm, oracle, ORACLE, "setResolver", OUTSIDER.address, True, sender=OUTSIDER.address)


def test_commit_batch_is_all_or_nothing_and_finalize_batch_too(
    anvil: Anvil,
    w3: Web3,
    deployment: Deployment,
    evm: EvmClient,
    make_spec: Callable[..., MarketSpec],
) -> None:
    """``commitBatch`` commits every market or none: one that cannot be committed reverts the
    call with that market's reason; ``finalizeBatch`` likewise. (The signer's carriers rely on
    it: a successful receipt proves every member's call took effect, ADR 0021.)"""
    markets = [create_market(w3, deployment.factory, make_spec())[0] for _ in range(3)]
    oracle = deployment.oracle
    hashes = [bytes([n + 1]) * 32 for n in range(3)]
    transact(w3, RESOLVER, oracle, ORACLE, "commit", markets[1], 1, hashes[1])
    batch = (markets, [1, 0, 1], hashes)
    with pytest.raises(RevertError) as err:
        call(evm, oracle, ORACLE, "commitBatch", *batch, sender=RESOLVER.address)
    assert err.value.reason == f"AlreadyCommitted(market={markets[1]})"
    with pytest.raises(RevertError, match="NotResolver"):
        call(evm, oracle, ORACLE, "commitBatch", *batch, sender=OUTSIDER.address)
    with pytest.raises(RevertError, match=r"LengthMismatch\(markets=2, outcomes=1"):
        call(
            evm,
            oracle,
            ORACLE,
            "commitBatch",
            markets[::2],
            [1],
            hashes[::2],
            sender=RESOLVER.address,
        )
    bad = send(
        w3,
        RESOLVER,
        {"to": oracle, "data": ORACLE.encode_abi("commitBatch", list(batch)), "gas": 500_000},
        check=False,
    )
    assert bad["status"] == 0  # mined and reverted: market 0 and 2 are still free
    assert [call(evm, oracle, ORACLE, "pending", m)[3] for m in markets] == [False, True, False]

    rest = (markets[::2], [1, 1], hashes[::2])
    receipt = transact(w3, RESOLVER, oracle, ORACLE, "commitBatch", *rest)
    events = ORACLE.events.Committed().process_receipt(receipt)
    assert [(e["args"]["market"], e["args"]["dataHash"]) for e in events] == list(
        zip(rest[0], rest[2], strict=True)
    )
    assert [call(evm, oracle, ORACLE, "pending", m)[:2] for m in markets] == [
        (1, hashes[0]),
        (1, hashes[1]),
        (1, hashes[2]),
    ]

    anvil.increase_time(deployment.dispute_window)
    transact(w3, OUTSIDER, oracle, ORACLE, "finalize", markets[0])
    with pytest.raises(RevertError, match="AlreadyFinalized"):
        call(evm, oracle, ORACLE, "finalizeBatch", markets)
    receipt = transact(w3, OUTSIDER, oracle, ORACLE, "finalizeBatch", markets[1:])
    finals = ORACLE.events.Finalized().process_receipt(receipt, errors=DISCARD)
    assert [f["args"]["market"] for f in finals] == markets[1:]
    assert all(call(evm, m, MARKET, "resolved") for m in markets)


def test_finalize_waits_out_the_dispute_window(
    anvil: Anvil,
    w3: Web3,
    deployment: Deployment,
    evm: EvmClient,
    make_spec: Callable[..., MarketSpec],
) -> None:
    market, _ = create_market(w3, deployment.factory, make_spec())
    oracle = deployment.oracle
    with pytest.raises(RevertError, match="NotCommitted"):
        call(evm, oracle, ORACLE, "finalize", market)
    receipt = transact(w3, RESOLVER, oracle, ORACLE, "commit", market, 0, DATA_HASH)
    commit_time = w3.eth.get_block(receipt["blockNumber"])["timestamp"]

    with pytest.raises(RevertError) as err:
        call(evm, oracle, ORACLE, "finalize", market)
    assert err.value.error_name == "DisputeWindowOpen"
    assert err.value.error_args == (market, commit_time + deployment.dispute_window)
    # a transaction sent anyway is mined and reverts
    bad = send(
        w3,
        OUTSIDER,
        {"to": oracle, "data": ORACLE.encode_abi("finalize", [market]), "gas": 200_000},
        check=False,
    )
    assert bad["status"] == 0

    anvil.increase_time(deployment.dispute_window - 30)
    with pytest.raises(RevertError, match="DisputeWindowOpen"):
        call(evm, oracle, ORACLE, "finalize", market)
    anvil.increase_time(30)
    assert call(evm, market, MARKET, "resolved") is False
    receipt = transact(w3, OUTSIDER, oracle, ORACLE, "finalize", market)  # anyone may finalize
    (fin,) = ORACLE.events.Finalized().process_receipt(receipt, errors=DISCARD)
    assert (fin["args"]["outcome"], fin["args"]["dataHash"]) == (0, DATA_HASH)
    assert call(evm, market, MARKET, "resolved") is True
    assert call(evm, market, MARKET, "outcome") == 0
    assert call(evm, market, MARKET, "dataHash") == DATA_HASH
    assert call(evm, oracle, ORACLE, "pending", market)[3:] == (True, True)
    with pytest.raises(RevertError, match="AlreadyFinalized"):
        call(evm, oracle, ORACLE, "finalize", market)
    with pytest.raises(RevertError, match="NotOracle"):
        call(evm, market, MARKET, "ingestResolution", 1, DATA_HASH, sender=RESOLVER.address)


@pytest.mark.timeout(60)
def test_artifacts_rebuild_byte_for_byte() -> None:
    """Recompile with the pinned solcjs and compare with the committed artifacts (about 3 s)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    result = subprocess.run(
        [node, str(CONTRACTS_DIR / "build.js"), "--check"],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
