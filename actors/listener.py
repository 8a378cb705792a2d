"""Listener: finds ``MarketCreated`` logs and hands each market to the scheduler, at least once.

Every ``poll_s`` of the clock::

    check the cursor's block is still canonical --no--> rewind to the fork point (reorg)
    scan (cursor, head - confirmations] in ranges  --node refuses the range--> halve it, retry
    the range's logs -> decode -> ask the scheduler, 1000 at a time as they are decoded
                                   (MarketsDiscovered -> Ack, one durable txn each)
                   `--> does not decode: audit entry + counter, go on
    then checkpoint the cursor (number, hash, and the recent hashes for the next reorg check)

The cursor moves only after the scheduler acknowledged every market of the range, so a crash
anywhere repeats a hand-off rather than losing one; the scheduler dedups by market key. A reorg
deeper than the remembered hashes rewinds ``max_rewind`` blocks and rescans; ``RecoverMarkets``
rebuilds the set of markets from the factory's own list, 500 a page with one batch of reads each
(a new data directory, or a reorg deeper still); an RPC error stops it, answered, not a crash.
Args: ``chain``; ``scheduler`` (name). Services: ``store``, ``evms`` and ``chains`` (by chain).
"""

from __future__ import annotations

import logging
from typing import Any

import pykka
from eth_abi.abi import decode, encode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_signature_to_4byte_selector

from protocol.market_abi import (
    MARKET_CREATED_TOPIC,
    MarketAbiError,
    decode_market_created,
    decode_market_params,
)
from protocol.messages import (
    CommandResult,
    MarketDiscovered,
    MarketsDiscovered,
    RecoverMarkets,
    Tick,
)
from protocol.records import AuditEntry, Cursor
from protocol.spec import MarketKey
from sources.evm import ConfigurationError, EvmClient, EvmError, Log, RangeTooLarge
from storage import Store
from supervision import NotRegistered, SupervisedActor

log = logging.getLogger(__name__)
RECENT_HASHES = 128
HAND_OFF_BATCH = 1000
"""Markets handed to the scheduler per ask (one durable transaction each), as they are decoded."""
ZERO_HASH = "0x" + "00" * 32
_MARKET_COUNT = function_signature_to_4byte_selector("marketCount()")
_ALL_MARKETS = function_signature_to_4byte_selector("allMarkets(uint256,uint256)")
_PARAMS_OF = function_signature_to_4byte_selector("paramsOf(address)")


class Listener(SupervisedActor):
    # --- start: the cursor from LMDB, then poll --------------------------------------------

    def init(self) -> None:
        self.chain = str(self.ctx.args["chain"])
        self.store: Store = self.services.extra["store"]
        self.evm: EvmClient = self.services.extra["evms"][self.chain]
        config = self.services.extra["chains"][self.chain]
        self.factory: str = config.factory
        self.confirmations = int(config.confirmations)
        self.start_block = int(config.start_block)
        self.poll_s = float(config.poll_s)
        self.max_range = int(config.max_log_range)
        self.max_rewind = int(self.ctx.args.get("max_rewind", 1024))
        self.scheduler = str(self.ctx.args.get("scheduler", "scheduler"))
        self.range = self.max_range
        # a cursor that does not decode is reported and the scan starts again at
        # ``start_block``: markets handed off twice are one job each (the scheduler dedups)
        self.cursor: Cursor | None = self.store.get_lenient("cursors", self.chain.encode(), Cursor)
        self.recent: dict[int, str] = dict(self.cursor.recent) if self.cursor else {}
        self.stats = dict.fromkeys(
            ("markets", "hand_offs", "bad_logs", "reorgs", "polls", "errors"), 0
        )
        self.head = 0
        self.halted = ""
        self.send_later(0, self.name, Tick(now=0))

    def handle(self, message: Any) -> Any:
        match message:
            case Tick():
                self._poll()
                self.send_later(self.poll_s, self.name, Tick(now=self.clock.now()))
                return None
            case RecoverMarkets():
                return self._recover()
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {
            "chain": self.chain,
            "cursor": self.cursor.block_number if self.cursor else None,
            "head": self.head,
            "range": self.range,
            "halted": self.halted,
            **self.stats,
        }

    # --- one poll ------------------------------------------------------------------------

    def _poll(self) -> None:
        self.stats["polls"] += 1
        try:
            self.head = self.evm.block_number()
            self._check_canonical()
            safe = self.head - self.confirmations
            start = self.cursor.block_number + 1 if self.cursor else self.start_block
            while start <= safe:
                end = min(safe, start + self.range - 1)
                if not self._scan(start, end):
                    continue  # range shrunk: try again from the same start
                start = end + 1
            self.halted = ""
        except ConfigurationError as exc:
            self.halted = str(exc)
            log.error("listener %s halted: %s", self.chain, exc)
        except EvmError as exc:
            self.stats["errors"] += 1
            log.warning("listener %s: %s; will retry", self.chain, exc)

    def _scan(self, start: int, end: int) -> bool:
        """Hand off the markets of ``[start, end]`` and move the cursor; False if refused."""
        try:
            logs = self.evm.get_logs(self.factory, [MARKET_CREATED_TOPIC], start, end)
        except RangeTooLarge:
            if self.range == 1:
                raise
            self.range = max(1, self.range // 2)
            return False
        batch: list[MarketDiscovered] = []
        for entry in sorted(logs, key=lambda x: (x.block_number, x.log_index)):
            if not entry.removed and (market := self._decode(entry)) is not None:
                batch.append(market)
            if len(batch) == HAND_OFF_BATCH:  # the scheduler starts on these while we decode
                self._hand_off(batch)
                batch = []
        if batch:
            self._hand_off(batch)
        block = self.evm.get_block(end)
        if block is None:
            raise EvmError(f"block {end} vanished while scanning")
        self._advance(Cursor(chain=self.chain, block_number=end, block_hash=block.hash))
        self.range = min(self.max_range, self.range * 2)
        return True

    def _hand_off(self, markets: list[MarketDiscovered]) -> None:
        """Ask the scheduler to take ``markets`` (one durable transaction there)."""
        found = MarketsDiscovered(markets=tuple(markets))
        self.registry.ask(self.scheduler, found, timeout=60.0)
        self.stats["markets"] += len(markets)
        self.stats["hand_offs"] += 1

    def _decode(self, entry: Log) -> MarketDiscovered | None:
        """The market a log announces; an undecodable log is audited and counted instead."""
        try:
            created = decode_market_created(entry.topics, entry.data)
        except MarketAbiError as exc:
            self.stats["bad_logs"] += 1
            where = f"block {entry.block_number} tx {entry.transaction_hash} log {entry.log_index}"
            log.warning("listener %s: undecodable MarketCreated at %s: %s", self.chain, where, exc)
            self.store.audit(
                AuditEntry(
                    ts=self.clock.now(),
                    actor=self.name,
                    action="bad_log",
                    subject=where,
                    detail={"reason": str(exc)[:500]},
                )
            )
            return None
        return MarketDiscovered(
            key=MarketKey(chain=self.chain, address=created.market),
            spec=created.spec,
            block_number=entry.block_number,
            block_hash=entry.block_hash,
            tx_hash=entry.transaction_hash,
            log_index=entry.log_index,
        )

    # --- the cursor and reorgs -----------------------------------------------------------

    def _advance(self, cursor: Cursor) -> None:
        self.recent[cursor.block_number] = cursor.block_hash
        for number in sorted(self.recent)[:-RECENT_HASHES]:
            del self.recent[number]
        cursor = cursor.model_copy(update={"recent": tuple(sorted(self.recent.items()))})
        self.store.put("cursors", self.chain.encode(), cursor)
        self.cursor = cursor

    def _check_canonical(self) -> None:
        if self.cursor is None:
            return
        block = self.evm.get_block(self.cursor.block_number)
        if block is not None and block.hash == self.cursor.block_hash:
            return
        self.stats["reorgs"] += 1
        fork = self._fork_point()
        log.warning(
            "listener %s: block %d left the chain; rescanning from %d",
            self.chain,
            self.cursor.block_number,
            fork + 1,
        )
        self.recent = {n: h for n, h in self.recent.items() if n <= fork}
        fork_block = self.evm.get_block(fork) if fork >= 0 else None
        self.cursor = Cursor(
            chain=self.chain,
            block_number=fork,
            block_hash=fork_block.hash if fork_block else ZERO_HASH,
            recent=tuple(sorted(self.recent.items())),
        )
        self.store.put("cursors", self.chain.encode(), self.cursor)

    def _fork_point(self) -> int:
        """The highest remembered block still canonical, else ``max_rewind`` blocks back."""
        numbers = sorted(self.recent, reverse=True)
        blocks = self.evm.get_blocks(numbers) if numbers else []
        for number, block in zip(numbers, blocks, strict=True):
            if block is not None and block.hash == self.recent[number]:
                return number
        assert self.cursor is not None
        return max(self.start_block - 1, self.cursor.block_number - self.max_rewind)

    # --- recovery from contract state ----------------------------------------------------

    def _recover(self) -> CommandResult:
        """Every market the factory lists, handed to the scheduler in pages; an RPC error
        stops it (asking again is safe) and is the answer, not a crash."""
        delivered = 0
        try:
            delivered = self._redeliver()
        except (EvmError, DecodingError, NotRegistered, pykka.Timeout) as exc:
            log.warning("listener %s: recovery stopped: %s", self.chain, exc)
            return CommandResult(ok=False, error=f"recovery stopped: {exc}; ask again")
        log.warning("listener %s: recovery re-delivered %d markets", self.chain, delivered)
        return CommandResult(ok=True, state=f"{delivered} markets re-delivered")

    def _redeliver(self) -> int:
        count = int(
            decode(["uint256"], self.evm.call({"to": self.factory, "data": _MARKET_COUNT}))[0]
        )
        head = self.evm.get_block("latest")
        if head is None:
            raise EvmError("no latest block")
        delivered = 0
        for offset in range(0, count, 500):
            page_call = _ALL_MARKETS + encode(["uint256", "uint256"], [offset, 500])
            (markets,) = decode(
                ["address[]"], self.evm.call({"to": self.factory, "data": page_call})
            )
            calls = [
                {"to": self.factory, "data": _PARAMS_OF + encode(["address"], [m])} for m in markets
            ]
            reads = self.evm.call_many(calls)
            page: list[MarketDiscovered] = []
            for market, raw in zip(markets, reads, strict=True):
                if isinstance(raw, EvmError):
                    raise raw
                try:
                    spec = decode_market_params(raw)
                except MarketAbiError as exc:
                    self.stats["bad_logs"] += 1
                    log.warning("listener %s: market %s: %s", self.chain, market, exc)
                    continue
                page.append(
                    MarketDiscovered(
                        key=MarketKey(chain=self.chain, address=market),
                        spec=spec,
                        block_number=head.number,
                        block_hash=head.hash,
                        tx_hash=ZERO_HASH,
                        log_index=0,
                        via="recovery",
                    )
                )
            if page:
                self._hand_off(page)
            delivered += len(page)
        return delivered
