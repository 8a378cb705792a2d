"""sources.evm.EvmClient against anvil, directly and through the fault proxy."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_utils.crypto import keccak

from devnet.anvil import Anvil, free_port
from devnet.keys import DEPLOYER, DEV_ACCOUNTS, OUTSIDER, RESOLVER
from devnet.rpc_proxy import RpcProxy
from protocol.messages import FailureClass
from sources.evm import (
    ConfigurationError,
    EvmClient,
    RangeTooLarge,
    RevertError,
    RpcError,
    TransientError,
    is_range_too_large,
    redact_url,
)
from tests.integration.scripted_node import Script

pytest_plugins = ["tests.integration.chain_fixtures"]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def reverting_init_code(payload: bytes) -> bytes:
    """Creation code that reverts with ``payload`` (run by ``eth_call`` without ``to``)."""
    n = len(payload).to_bytes(2, "big")
    head = b"\x61" + n + b"\x61\x00\x0f\x60\x00\x39" + b"\x61" + n + b"\x60\x00\xfd"
    assert len(head) == 15
    return head + payload


def signed_transfer(client: EvmClient, nonce: int, to: str = OUTSIDER.address) -> bytes:
    tx = {
        "to": to,
        "value": 1,
        "gas": 21_000,
        "maxFeePerGas": 50 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": nonce,
        "chainId": 31337,
        "type": 2,
    }
    return bytes(Account.sign_transaction(tx, DEPLOYER.private_key).raw_transaction)


def test_failover_from_a_dead_url(anvil: Anvil) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v2/SECRET-API-KEY"
    with EvmClient([dead, anvil.rpc_url], 31337, timeout_s=2.0, failure_threshold=1) as client:
        assert client.block_number() == 0
        dead_node, live_node = client.health()
        assert not dead_node.healthy and dead_node.resting_s > 0
        assert "SECRET" not in dead_node.label and "SECRET" not in dead_node.last_error
        assert live_node.healthy and live_node.consecutive_failures == 0
        calls = dead_node.calls
        for _ in range(3):
            client.chain_id()
        assert client.health()[0].calls == calls  # a resting node gets no calls


def test_all_nodes_dead_is_transient() -> None:
    urls = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"]
    with EvmClient(urls, 31337, timeout_s=1.0) as client, pytest.raises(TransientError) as err:
        client.block_number()
    assert err.value.failure is FailureClass.TRANSIENT
    assert "node0" in str(err.value) and "node1" in str(err.value)


def test_failover_past_5xx_and_preference_for_the_healthy(
    anvil: Anvil, rpc_proxy: RpcProxy
) -> None:
    rpc_proxy.set_faults(error_rate=1.0)
    with EvmClient([rpc_proxy.url, anvil.rpc_url], 31337, timeout_s=2.0) as client:
        assert client.chain_id() == 31337
        assert client.health()[0].consecutive_failures == 1
        client.block_number()
        assert rpc_proxy.stats()["requests"] == 1  # the failed node went to the back


def test_a_flaky_node_is_asked_again_within_the_retry_budget(rpc_proxy: RpcProxy) -> None:
    with EvmClient([rpc_proxy.url], 31337, timeout_s=2.0, retries=8, retry_pause_s=0.001) as c:
        c.verify()
        rpc_proxy.set_faults(error_rate=0.3)
        assert all(c.block_number() == 0 for _ in range(30))  # each fails with p = 0.3**9
    assert rpc_proxy.stats()["error_5xx"] > 0


def test_retries_are_bounded_and_only_for_transient_failures(
    rpc_proxy: RpcProxy, anvil: Anvil
) -> None:
    with EvmClient([rpc_proxy.url], 31337, timeout_s=2.0, retries=2) as client:
        client.verify()
        rpc_proxy.set_faults(error_rate=1.0)
        rpc_proxy.reset_stats()
        with pytest.raises(TransientError) as err:
            client.block_number()
        assert rpc_proxy.stats()["requests"] == 3  # three passes (the third re-checks the chain id)
        assert str(err.value).count("HTTP 503") == 1  # the same failure is named once
        assert client.call_budget_s == pytest.approx(2.0 * 3 + 0.05 + 0.1)
    with EvmClient([anvil.rpc_url], 31337, timeout_s=2.0, retries=2) as client:
        with pytest.raises(RevertError):  # the node answered: asking again cannot help
            client.call({"data": reverting_init_code(b"")})
        assert client.health()[0].calls == 2  # eth_chainId, then the one eth_call


def test_a_pass_with_a_transient_failure_is_retried_even_beside_a_lying_node(
    start_anvil: Callable[..., Anvil], rpc_proxy: RpcProxy
) -> None:
    liar = start_anvil(chain_id=999)
    with EvmClient([liar.rpc_url, rpc_proxy.url], 31337, timeout_s=2.0, retries=2) as client:
        rpc_proxy.set_faults(error_rate=1.0)
        with pytest.raises(TransientError):
            client.block_number()
        assert rpc_proxy.stats()["requests"] == 3  # the flaky node, on each of three passes
        assert client.health()[0].wrong_chain_id == 999 and client.health()[0].calls == 1


def test_lying_node_is_refused(start_anvil: Callable[..., Anvil], anvil: Anvil) -> None:
    liar = start_anvil(chain_id=999)
    with EvmClient([liar.rpc_url], 31337, timeout_s=2.0) as client:
        with pytest.raises(ConfigurationError, match="says 999") as err:
            client.block_number()
        assert err.value.failure is FailureClass.CONFIGURATION
        with pytest.raises(ConfigurationError):
            client.block_number()
    with EvmClient([liar.rpc_url, anvil.rpc_url], 31337, timeout_s=2.0) as client:
        assert client.chain_id() == 31337  # served by the honest node
        assert client.health()[0].wrong_chain_id == 999
        with pytest.raises(ConfigurationError, match="configured chain id 31337"):
            client.verify()


def test_batch_of_100_calls_direct_and_through_the_proxy(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    addresses = [Account.create().address for _ in range(90)] + [a.address for a in DEV_ACCOUNTS]
    calls = [("eth_getBalance", [a, "latest"]) for a in addresses]
    with EvmClient([anvil.rpc_url], 31337, timeout_s=5.0) as direct:
        balances = [int(x, 16) for x in direct.batch(calls)]
    assert balances[:90] == [0] * 90 and all(b > 0 for b in balances[90:])
    with EvmClient([rpc_proxy.url], 31337, timeout_s=5.0, max_batch=40) as proxied:
        assert [int(x, 16) for x in proxied.batch(calls)] == balances
        assert rpc_proxy.stats()["batches"] == 3  # 100 calls in batches of 40
        anvil.mine(5)
        blocks = proxied.get_blocks(range(7))
    assert [b.number if b else None for b in blocks] == [0, 1, 2, 3, 4, 5, None]
    assert blocks[3] and blocks[4] and blocks[4].parent_hash == blocks[3].hash


def test_batch_item_errors(anvil: Anvil) -> None:
    calls: list[tuple[str, list[str]]] = [
        ("eth_chainId", []),
        ("eth_noSuchMethod", []),
        ("eth_blockNumber", []),
    ]
    with EvmClient([anvil.rpc_url], 31337, timeout_s=5.0) as client:
        results = client.batch(calls, return_errors=True)
        assert results[0] == "0x7a69" and results[2] == "0x0"
        assert isinstance(results[1], RpcError)
        with pytest.raises(RpcError):
            client.batch(calls)


def test_range_too_large_through_the_proxy(anvil: Anvil, rpc_proxy: RpcProxy) -> None:
    anvil.mine(30)
    rpc_proxy.set_faults(max_logs_range=10)
    with EvmClient([rpc_proxy.url], 31337, timeout_s=5.0) as client:
        with pytest.raises(RangeTooLarge) as err:
            client.get_logs(DEPLOYER.address, [], 0, "latest")
        assert err.value.failure is FailureClass.PERMANENT
        assert client.get_logs(DEPLOYER.address, [], 0, 9) == []
        assert client.health()[0].consecutive_failures == 0  # an answer, not a node failure


@pytest.mark.parametrize(
    ("knobs", "match"),
    [
        ({"error_rate": 1.0}, "HTTP 503"),
        ({"malformed_rate": 1.0}, "malformed reply"),
        ({"drop_rate": 1.0}, "RemoteProtocolError"),
        ({"timeout_rate": 1.0, "timeout_hold_s": 2.0}, "timeout after 0.3s"),
    ],
)
def test_transport_faults_are_transient(
    rpc_proxy: RpcProxy, knobs: dict[str, object], match: str
) -> None:
    with EvmClient([rpc_proxy.url], 31337, timeout_s=0.3) as client:
        client.verify()  # the chain id check passes before the faults start
        rpc_proxy.set_faults(**knobs)
        with pytest.raises(TransientError, match=match) as err:
            client.block_number()
    assert err.value.failure is FailureClass.TRANSIENT


def test_revert_reasons_are_decoded(anvil: Anvil) -> None:
    abi = [{"type": "error", "name": "Nope", "inputs": [{"name": "who", "type": "address"}]}]
    with EvmClient([anvil.rpc_url], 31337, timeout_s=5.0, abis=[abi]) as client:

        def revert_with(payload: bytes) -> RevertError:
            with pytest.raises(RevertError) as err:
                client.call({"data": reverting_init_code(payload)})
            assert err.value.failure is FailureClass.PERMANENT
            return err.value

        error = revert_with(bytes.fromhex("08c379a0") + encode(["string"], ["already committed"]))
        assert (error.error_name, error.reason) == ("Error", "already committed")
        assert "reverted: already committed" in str(error)
        panic = revert_with(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]))
        assert panic.reason == "Panic(0x11: arithmetic overflow)"
        nope = keccak(text="Nope(address)")[:4] + encode(["address"], [RESOLVER.address])
        custom = revert_with(nope)
        assert custom.reason == f"Nope(who={RESOLVER.address})"
        assert custom.error_args == (RESOLVER.address,)
        unknown = revert_with(bytes.fromhex("deadbeef"))
        assert unknown.reason.startswith("unknown error 0xdeadbeef")
        assert revert_with(b"").reason
        with pytest.raises(RevertError, match="eth_estimateGas reverted: already committed"):
            client.estimate_gas({"data": reverting_init_code(error.revert_data)})


def test_typed_helpers_and_raw_transactions(anvil: Anvil) -> None:
    with EvmClient([anvil.rpc_url], 31337, timeout_s=5.0) as client:
        genesis = client.get_block(0)
        assert genesis is not None and genesis.number == 0 and genesis.base_fee_per_gas
        assert client.get_block_by_hash(genesis.hash) == genesis
        assert client.get_block(10**6) is None
        assert client.estimate_gas({"from": DEPLOYER.address, "to": OUTSIDER.address}) == 21_000

        anvil.set_automine(False)
        raw = signed_transfer(client, nonce=0)
        tx_hash = client.send_raw_transaction(raw)
        assert client.get_transaction_receipt(tx_hash) is None
        assert client.get_transaction_count(DEPLOYER.address, "latest") == 0
        assert client.get_transaction_count(DEPLOYER.address, "pending") == 1
        with pytest.raises(RpcError) as err:
            client.send_raw_transaction(raw)
        assert err.value.tx_rejection == "already_known", err.value.message
        anvil.mine(1)
        receipt = client.get_transaction_receipt(tx_hash)
        assert receipt is not None and receipt.status == 1 and receipt.block_number == 1
        assert receipt.gas_used == 21_000 and receipt.effective_gas_price > 0
        with pytest.raises(RpcError) as err:
            client.send_raw_transaction(raw)
        assert err.value.tx_rejection in ("nonce_too_low", "already_known"), err.value.message

        history = client.fee_history(2, "latest", [50.0])
        assert history.oldest_block == 0 and len(history.base_fee_per_gas) == 3
        assert len(history.reward) == 2 and len(history.gas_used_ratio) == 2
        assert client.get_balance(OUTSIDER.address) > 0


def test_redact_url() -> None:
    assert redact_url("https://user:pw@rpc.example:8443/v2/KEY?x=1") == "https://rpc.example:8443"
    with pytest.raises(ConfigurationError):
        EvmClient([], 1, 1.0)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("block range too large: 21 blocks, max 10", True),
        ("query exceeds max block range 1000", True),
        ("exceed maximum block range: 5000", True),
        ("query returned more than 10000 results", True),
        ("Log response size exceeded. Make requests with up to a 2K block range", True),
        ("eth_getLogs is limited to a 10,000 range", True),
        ("block range is too wide", True),
        ("Block range limit exceeded", True),
        ("invalid block range params", False),
        ("header not found", False),
    ],
)
def test_range_too_large_wordings(message: str, expected: bool) -> None:
    assert is_range_too_large(message) is expected


def test_malformed_result_fails_over(anvil: Anvil, node: Callable[[Script], str]) -> None:
    bad = node(lambda body: {"jsonrpc": "2.0", "id": body["id"], "result": "not-hex"})
    with EvmClient([bad, anvil.rpc_url], 31337, timeout_s=2.0) as client:
        assert client.block_number() == 0
        assert "malformed result of eth_blockNumber" in client.health()[0].last_error
    with EvmClient([bad], 31337, timeout_s=2.0) as client, pytest.raises(TransientError):
        client.block_number()
