"""A devnet for the whole job: anvil at the fixtures' time, the contracts, the simulator.

    with Devnet.start() as net:                       # anvil + contracts + Hyperliquid simulator
        keys = net.create_markets(specs)              # MarketCreated on chain
        config = net.config(tmp / "data")             # a daemon Config for this devnet
        ...
        net.outcomes(keys)                            # what the oracle holds, per market

Everything it starts is stopped on exit, by PID for anvil. The chain starts at ``REPLAY_NOW``
and mines a block every ``block_time`` seconds; ``config()`` shifts the daemon's clock by the
same offset, so the recorded data is "recent" for both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w
from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector
from web3 import Web3

from devnet.anvil import PRUNE_HISTORY, Anvil
from devnet.deploy import Deployment, deploy
from devnet.hl_sim.dataset import Dataset
from devnet.hl_sim.faults import FaultConfig
from devnet.hl_sim.fixtures import cassettes_dir
from devnet.hl_sim.server import HlSimulator
from devnet.keys import CREATOR, RESOLVER
from devnet.rpc_proxy import Faults, RpcProxy
from devnet.scenario import REPLAY_NOW
from ops.config import (
    ApiConfig,
    ChainConfig,
    Config,
    HyperliquidConfig,
    KeySource,
    LimitsConfig,
)
from protocol.market_abi import encode_create_market
from protocol.spec import MarketKey, MarketSpec
from sources.hl_weights import WEIGHT_LIMIT_PER_MINUTE

KEY_ENV = "ORACLE_RUNNER_DEVNET_KEY"
CHAIN = "dev"
CREATE_CHUNK = 200
_PENDING = function_signature_to_4byte_selector("pending(address)")


@dataclass
class Devnet:
    anvil: Anvil
    w3: Web3
    deployment: Deployment
    sim: HlSimulator
    proxy: RpcProxy | None = None
    offset_s: float = 0.0
    _stack: ExitStack = field(default_factory=ExitStack)

    @classmethod
    @contextmanager
    def start(
        cls,
        *,
        block_time: float | None = 1.0,
        dispute_window_s: int = 5,
        hl_data: str | Path | None = None,
        sim_faults: FaultConfig | None = None,
        rpc_faults: Faults | None = None,
        sim_weight_limit: int = WEIGHT_LIMIT_PER_MINUTE,
        gas_limit: int | None = None,
        prune_history: int = PRUNE_HISTORY,
    ) -> Iterator[Devnet]:
        with ExitStack() as stack:
            offset = REPLAY_NOW - time.time()
            extra: tuple[str, ...] = ("--timestamp", str(REPLAY_NOW))
            if gas_limit is not None:
                extra += ("--gas-limit", str(gas_limit))
            anvil = stack.enter_context(
                Anvil(block_time=block_time, extra_args=extra, prune_history=prune_history)
            )
            w3 = Web3(Web3.HTTPProvider(anvil.rpc_url, request_kwargs={"timeout": 30}))
            deployment = deploy(w3, dispute_window=dispute_window_s)
            dataset = Dataset.from_cassettes(hl_data or cassettes_dir())
            sim = stack.enter_context(
                HlSimulator(dataset, faults=sim_faults, weight_limit=sim_weight_limit)
            )
            proxy = None
            if rpc_faults is not None:
                proxy = stack.enter_context(RpcProxy(anvil.rpc_url, seed=7, faults=rpc_faults))
            os.environ[KEY_ENV] = RESOLVER.private_key  # a public anvil dev key
            yield cls(anvil, w3, deployment, sim, proxy, offset)

    @property
    def rpc_url(self) -> str:
        return self.proxy.url if self.proxy is not None else self.anvil.rpc_url

    def config(
        self, data_dir: Path, *, chain: dict[str, Any] | None = None, **limits: Any
    ) -> Config:
        """A daemon configuration for this devnet (the key from ``KEY_ENV``); ``chain``
        overrides fields of the chain's table, ``limits`` those of ``[limits]``."""
        settings: dict[str, Any] = {
            "settle_delay_s": 2,
            "max_resolvers": 64,
            "retry_base_s": 1,
            "retry_cap_s": 5,
            **limits,
        }
        return Config(
            data_dir=data_dir,
            log_level="WARNING",
            chains={
                CHAIN: ChainConfig(
                    **{
                        "rpc_urls": [self.rpc_url],
                        "chain_id": self.deployment.chain_id,
                        "factory": self.deployment.factory,
                        "oracle": self.deployment.oracle,
                        "confirmations": 1,
                        "start_block": self.deployment.block,
                        "key": KeySource(env=KEY_ENV),
                        "poll_s": 0.5,
                        "rpc_timeout_s": 5,
                        **(chain or {}),
                    }
                )
            },
            hyperliquid=HyperliquidConfig(base_urls=[self.sim.url]),
            limits=LimitsConfig(**settings),
            api=ApiConfig(port=0),  # any free port: several devnet daemons may run at once
            clock_offset_s=self.offset_s,
        )

    def config_file(self, path: Path, data_dir: Path, **limits: Any) -> Path:
        """``config()`` written as the TOML file ``oracle-runner run --config`` reads."""
        config = self.config(data_dir, **limits).model_dump(mode="json", exclude_none=True)
        del config["clock_offset_s"]  # a file carries the offset below, fixed at the devnet's start
        config["clock_offset_s"] = self.offset_s
        path.write_text(tomli_w.dumps(config))
        return path

    def create_markets(self, specs: list[MarketSpec]) -> list[MarketKey]:
        """Create the markets, 200 ``createMarket`` at a time; their keys, in order."""
        keys: list[MarketKey] = []
        for start in range(0, len(specs), CREATE_CHUNK):
            keys += self._create_chunk(specs[start : start + CREATE_CHUNK])
        return keys

    def _create_chunk(self, specs: list[MarketSpec]) -> list[MarketKey]:
        w3, factory = self.w3, self.deployment.factory
        nonce = w3.eth.get_transaction_count(Web3.to_checksum_address(CREATOR.address))
        hashes = []
        for offset, spec in enumerate(specs):
            tx = {
                "to": factory,
                "data": encode_create_market(spec),
                "nonce": nonce + offset,
                "gas": 3_000_000,
                "maxFeePerGas": 10**11,
                "maxPriorityFeePerGas": 10**9,
                "chainId": self.deployment.chain_id,
            }
            signed = w3.eth.account.sign_transaction(tx, CREATOR.private_key)
            hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
        keys = []
        for tx_hash in hashes:
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
            if receipt["status"] != 1:
                raise RuntimeError(f"createMarket failed in {tx_hash.hex()}")
            (log,) = [lg for lg in receipt["logs"] if lg["address"] == factory]
            address = Web3.to_checksum_address(log["topics"][1][-20:])
            keys.append(MarketKey(chain=CHAIN, address=address))
        return keys

    def outcomes(self, keys: list[MarketKey]) -> dict[MarketKey, tuple[int, str, bool]]:
        """``(outcome, data hash, finalized)`` the oracle holds for each committed market."""
        found = {}
        for key in keys:
            raw = self.w3.eth.call(
                {
                    "to": self.deployment.oracle,
                    "data": _PENDING + encode(["address"], [key.address]),
                }
            )
            outcome, data_hash, _, committed, finalized = decode(
                ["uint8", "bytes32", "uint64", "bool", "bool"], raw
            )
            if committed:
                found[key] = (int(outcome), "0x" + data_hash.hex(), bool(finalized))
        return found
