"""The oracle contract as the resolver sees it: reads, chain time, and calldata for the signer.

    oracle = OracleClient(evm, "0xOracle...")
    p = oracle.pending(market)              # Pending(outcome, data_hash, commit_time, ...)
    data = oracle.commit_call(market, 1, bytes.fromhex("ab" * 32))
    signer.tell(SubmitTx(..., to=oracle.address, data=data, ...))

Encoding is eth-abi's; every read goes through ``EvmClient`` (timeouts, failover).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi.abi import decode, encode
from eth_utils.abi import function_signature_to_4byte_selector

from sources.evm import EvmClient

_PENDING = function_signature_to_4byte_selector("pending(address)")
_DISPUTE_WINDOW = function_signature_to_4byte_selector("disputeWindow()")
_COMMIT = function_signature_to_4byte_selector("commit(address,uint8,bytes32)")
_FINALIZE = function_signature_to_4byte_selector("finalize(address)")


@dataclass(frozen=True)
class Pending:
    """``SimpleOracle.pending(market)``: all zero when nothing was committed."""

    outcome: int
    data_hash: str
    """``0x`` + 64 hex digits."""
    commit_time: int
    committed: bool
    finalized: bool


class OracleClient:
    """Typed access to one ``SimpleOracle`` deployment."""

    def __init__(self, evm: EvmClient, address: str) -> None:
        self.evm = evm
        self.address = address
        self._dispute_window: int | None = None

    def pending(self, market: str) -> Pending:
        raw = self.evm.call({"to": self.address, "data": _PENDING + encode(["address"], [market])})
        outcome, data_hash, commit_time, committed, finalized = decode(
            ["uint8", "bytes32", "uint64", "bool", "bool"], raw
        )
        return Pending(int(outcome), "0x" + data_hash.hex(), int(commit_time), committed, finalized)

    def dispute_window(self) -> int:
        if self._dispute_window is None:
            raw = self.evm.call({"to": self.address, "data": _DISPUTE_WINDOW})
            self._dispute_window = int(decode(["uint64"], raw)[0])
        return self._dispute_window

    def chain_time(self) -> int:
        """The latest block's timestamp: the time ``finalize`` is judged by."""
        block = self.evm.get_block("latest")
        if block is None:
            raise LookupError("the node has no latest block")
        return block.timestamp

    def commit_call(self, market: str, outcome: int, data_hash: bytes) -> bytes:
        return _COMMIT + encode(["address", "uint8", "bytes32"], [market, outcome, data_hash])

    def finalize_call(self, market: str) -> bytes:
        return _FINALIZE + encode(["address"], [market])
