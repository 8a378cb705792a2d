"""Deploy the reference contracts to a devnet and create markets on it.

::

    from web3 import Web3
    from devnet.deploy import deploy, create_market

    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    d = deploy(w3, dispute_window=600)          # SimpleOracle + MarketFactory, RESOLVER allowed
    market, tx_hash = create_market(w3, d.factory, spec)

Transactions are signed locally with the public dev keys of ``devnet.keys`` (so the same code works
against any node, not only anvil's unlocked accounts) and waited for with a bounded timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import encode
from eth_account import Account
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.types import TxReceipt

from devnet.keys import CREATOR, DEPLOYER, RESOLVER, DevAccount
from protocol.market_abi import (
    CREATE_MARKET_SELECTOR,
    MARKET_CREATED_TOPIC,
    MARKET_PARAMS_TYPE,
    encode_create_market,
)
from protocol.spec import MarketSpec
from sources.artifacts import load_artifact

RECEIPT_TIMEOUT_S = 30.0


class DeployError(RuntimeError):
    """A devnet transaction reverted or was not mined in time."""


@dataclass(frozen=True)
class Deployment:
    """Where the reference contracts live on a devnet."""

    oracle: str
    factory: str
    deployer: str
    resolver: str
    chain_id: int
    block: int
    """The block of the factory's deployment: a listener with no cursor starts here."""
    dispute_window: int


def send(w3: Web3, account: DevAccount, tx: dict[str, Any], *, check: bool = True) -> TxReceipt:
    """Sign ``tx`` with ``account``, send it and wait for the receipt (raises if it reverted)."""
    full = {"from": account.address, "chainId": w3.eth.chain_id, **tx}
    sender = to_checksum_address(account.address)
    full.setdefault("nonce", w3.eth.get_transaction_count(sender, "pending"))
    full.setdefault("value", 0)
    if "gas" not in full:
        full["gas"] = w3.eth.estimate_gas(full)  # type: ignore[arg-type]
    if "maxFeePerGas" not in full and "gasPrice" not in full:
        base = w3.eth.get_block("latest").get("baseFeePerGas", 0)
        full["maxPriorityFeePerGas"] = 1_000_000_000
        full["maxFeePerGas"] = 2 * base + full["maxPriorityFeePerGas"]
    signed = Account.sign_transaction(full, account.private_key)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT_S)
    if check and receipt["status"] != 1:
        raise DeployError(f"transaction {tx_hash.to_0x_hex()} reverted")
    return receipt


def deploy_contract(w3: Web3, account: DevAccount, name: str, *args: Any) -> tuple[str, int]:
    """Deploy the artifact ``name`` with constructor ``args``; returns (address, block)."""
    art = load_artifact(name)
    data = (
        w3.eth.contract(abi=art.abi, bytecode=art.bytecode).constructor(*args).data_in_transaction
    )
    receipt = send(w3, account, {"data": data})
    address = receipt["contractAddress"]
    if address is None:
        raise DeployError(f"{name} deployment has no contract address")
    return str(to_checksum_address(address)), int(receipt["blockNumber"])


def deploy(
    w3: Web3,
    *,
    dispute_window: int = 600,
    deployer: DevAccount = DEPLOYER,
    resolvers: Sequence[str] = (RESOLVER.address,),
) -> Deployment:
    """Deploy SimpleOracle(dispute_window) and MarketFactory(oracle); allow ``resolvers``."""
    oracle, _ = deploy_contract(w3, deployer, "SimpleOracle", dispute_window)
    factory, block = deploy_contract(w3, deployer, "MarketFactory", oracle)
    contract = w3.eth.contract(abi=load_artifact("SimpleOracle").abi)
    for resolver in resolvers:
        data = contract.encode_abi("setResolver", [to_checksum_address(resolver), True])
        send(w3, deployer, {"to": oracle, "data": data})
    return Deployment(
        oracle=oracle,
        factory=factory,
        deployer=deployer.address,
        resolver=str(to_checksum_address(resolvers[0])) if resolvers else "",
        chain_id=w3.eth.chain_id,
        block=block,
        dispute_window=dispute_window,
    )


def _market_from(receipt: TxReceipt, factory: str) -> str:
    for log in receipt["logs"]:
        topics = log["topics"]
        if (
            log["address"].lower() == factory.lower()
            and topics
            and topics[0].to_0x_hex() == MARKET_CREATED_TOPIC
        ):
            return str(to_checksum_address(topics[1][12:]))
    raise DeployError("createMarket mined without a MarketCreated log")


def create_market(
    w3: Web3, factory: str, spec: MarketSpec, *, sender: DevAccount = CREATOR
) -> tuple[str, str]:
    """Create a market for ``spec``; returns (market address, tx hash as 0x-hex)."""
    data = encode_create_market(spec)
    receipt = send(w3, sender, {"to": to_checksum_address(factory), "data": data})
    return _market_from(receipt, factory), receipt["transactionHash"].to_0x_hex()


def create_market_raw(
    w3: Web3, factory: str, params: tuple[Any, ...], *, sender: DevAccount = CREATOR
) -> tuple[str, str]:
    """Create a market from a raw ``MarketParams`` tuple, valid as a spec or not (for tests of
    the listener's "does not decode" path: e.g. a predicate op of 9 or an empty token)."""
    data = CREATE_MARKET_SELECTOR + encode([MARKET_PARAMS_TYPE], [params])
    receipt = send(w3, sender, {"to": to_checksum_address(factory), "data": data})
    return _market_from(receipt, factory), receipt["transactionHash"].to_0x_hex()
