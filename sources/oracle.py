"""The oracle contract as the resolver sees it: reads, chain time, and calldata for the signer.

    oracle = OracleClient(evm, "0xOracle...")
    p = oracle.pending(market)              # Pending(outcome, data_hash, commit_time, ...)
    oracle.read_pending(market, deliver)    # the same, to a callback, without waiting
    data = oracle.commit_call(market, 1, bytes.fromhex("ab" * 32))
    signer.tell(SubmitTx(..., to=oracle.address, data=data, ...))

Calls and answers are static ABI words (``protocol.abi_words``: eth-abi's bytes, written and
read word by word; eth-abi reads any other layout); every read goes through ``EvmClient``
(timeouts, failover). Reads made by many resolvers at once are coalesced: concurrent
``pending`` calls go out as one JSON-RPC batch (``read_pending`` ones likewise, on a thread of
their own: ``sources.batcher``), and concurrent ``chain_time`` calls share one
``eth_getBlockByNumber`` whose answer is reused for ``chain_time_max_age_s`` (an older chain
time only makes a finalize wait longer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector

from protocol.abi_words import decode_words, encode_words, word
from sources.batcher import Batcher
from sources.bundles import COMMIT, FINALIZE
from sources.coalesce import Coalescer
from sources.evm import EvmClient, EvmError, TransientError

_PENDING = function_signature_to_4byte_selector("pending(address)")
_DISPUTE_WINDOW = function_signature_to_4byte_selector("disputeWindow()")
_PENDING_ANSWER = ("uint8", "bytes32", "uint64", "bool", "bool")
_COMMIT_ARGS = ("address", "uint8", "bytes32")
BLOCK_TIMES_KEPT = 256
STALE_CHAIN_TIME_S = 2.0
"""The oldest known chain time a reader takes instead of waiting for another's head read."""
PENDING_LINGER_S = 0.02
"""How long a ``pending`` read waits for others to share its JSON-RPC batch (ADR 0009)."""


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

    def __init__(self, evm: EvmClient, address: str, *, chain_time_max_age_s: float = 0.25) -> None:
        self.evm = evm
        self.address = address
        self.chain_time_max_age_s = chain_time_max_age_s
        self._dispute_window: int | None = None
        self._reads: Coalescer[str, bytes] = Coalescer(
            self._pending_batch, linger_s=PENDING_LINGER_S
        )
        self._async_reads: Batcher[str, bytes] = Batcher(
            self._pending_batch, linger_s=PENDING_LINGER_S, name=f"oracle-reads-{address[:10]}"
        )
        if evm is not None:  # (calldata-only users pass no client)
            self._async_reads.max_batch = evm.max_batch
            self._reads.max_batch = evm.max_batch
            self._reads.timeout_s = evm.call_budget_s + evm.timeout_s  # the leader's call, and some
        self._time_lock = threading.Lock()
        self._lock_wait_s = 60.0 if evm is None else evm.call_budget_s + evm.timeout_s
        """The longest a caller waits for another's block read (its call, and some)."""
        self._time: tuple[float, int] | None = None
        self._block_times: dict[str, int] = {}

    def pending(self, market: str) -> Pending:
        return self._pending_of(market, self._reads.call(market))

    def read_pending(self, market: str, deliver: Callable[[Pending | Exception], None]) -> None:
        """``pending(market)`` without waiting: ``deliver`` gets the answer, or the exception,
        on the reads' own thread (``sources.batcher``), so it should only pass it on."""

        def decoded(raw: bytes | Exception) -> None:
            if isinstance(raw, Exception):
                deliver(raw)
                return
            try:
                answer: Pending | Exception = self._pending_of(market, raw)
            except Exception as exc:  # a malformed answer is the reader's to judge
                answer = exc
            deliver(answer)

        self._async_reads.submit(market, decoded)

    def close(self) -> None:
        """Stop the thread of ``read_pending`` (the synchronous reads need no closing)."""
        self._async_reads.close()

    def _pending_of(self, market: str, raw: bytes) -> Pending:
        outcome, data_hash, commit_time, committed, finalized = self._decode(
            f"pending({market})", _PENDING_ANSWER, raw
        )
        return Pending(int(outcome), "0x" + data_hash.hex(), int(commit_time), committed, finalized)

    def dispute_window(self) -> int:
        if self._dispute_window is None:
            raw = self.evm.call({"to": self.address, "data": _DISPUTE_WINDOW})
            self._dispute_window = int(self._decode("disputeWindow()", ("uint64",), raw)[0])
        return self._dispute_window

    def _decode(self, what: str, types: tuple[str, ...], raw: bytes) -> tuple[Any, ...]:
        """``raw`` as ``types``; an answer of another shape (no contract at the address, another
        contract) is a ``TransientError`` naming the call, retried and counted like any RPC
        failure, never an eth-abi exception out of a resolver."""
        fast = decode_words(types, raw)  # the usual, canonical answer, read word by word
        if fast is not None:
            return fast
        try:
            return tuple(decode(types, raw))
        except (DecodingError, ValueError, OverflowError) as exc:
            raise TransientError(
                f"the oracle {self.address} answered {what} with {len(raw)} bytes that are not "
                f"({', '.join(types)}): is it a SimpleOracle? ({type(exc).__name__})"
            ) from None

    def chain_time(self) -> int:
        """The latest block's timestamp: the time ``finalize`` is judged by.

        One caller reads the head at a time. A caller that finds a time known, older than
        ``chain_time_max_age_s`` but read within ``STALE_CHAIN_TIME_S``, while another caller
        (or a block read) holds the read takes that time instead of waiting: an older chain
        time only makes a finalize wait longer (by those seconds at most), never sooner, and
        under a burst hundreds of resolvers ask at once. An older one is waited for."""
        known = self._time
        age = time.monotonic() - known[0] if known is not None else None
        if known is not None and age is not None and age < self.chain_time_max_age_s:
            return known[1]
        if known is None or age is None or age >= STALE_CHAIN_TIME_S:
            self._take_block_reads()  # nothing recent known: wait for the reader's answer
        elif not self._time_lock.acquire(blocking=False):
            return known[1]
        try:
            known = self._time
            if known is not None and time.monotonic() - known[0] < self.chain_time_max_age_s:
                return known[1]
            block = self.evm.get_block("latest")
            if block is None:
                raise LookupError("the node has no latest block")
            self._time = (time.monotonic(), block.timestamp)
            return block.timestamp
        finally:
            self._time_lock.release()

    def block_time(self, block_hash: str) -> int:
        """The timestamp of the block ``block_hash`` (a commit's ``commitTime``); remembered,
        since the commits of hundreds of markets share a block (those after the first take it
        without the lock)."""
        known = self._block_times.get(block_hash)
        if known is not None:
            return known
        with self._block_reads():
            known = self._block_times.get(block_hash)
            if known is not None:
                return known
            block = self.evm.get_block_by_hash(block_hash)
            if block is None:
                raise LookupError(f"the node does not know block {block_hash} (reorged out?)")
            self._block_times[block_hash] = block.timestamp
            while len(self._block_times) > BLOCK_TIMES_KEPT:
                del self._block_times[next(iter(self._block_times))]
            return block.timestamp

    @contextmanager
    def _block_reads(self) -> Iterator[None]:
        """The block-read lock, waited for no longer than one call can take."""
        self._take_block_reads()
        try:
            yield
        finally:
            self._time_lock.release()

    def _take_block_reads(self) -> None:
        if not self._time_lock.acquire(timeout=self._lock_wait_s):
            raise TransientError(f"another block read has taken over {self._lock_wait_s:g} s")

    def _pending_batch(self, markets: list[str]) -> list[bytes | EvmError]:
        return self.evm.call_many(
            [{"to": self.address, "data": _PENDING + word("address", m)} for m in markets]
        )

    def commit_call(self, market: str, outcome: int, data_hash: bytes) -> bytes:
        return COMMIT + encode_words(_COMMIT_ARGS, (market, outcome, data_hash))

    def finalize_call(self, market: str) -> bytes:
        return FINALIZE + word("address", market)
