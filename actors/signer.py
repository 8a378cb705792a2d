"""Signer: the only user of one chain's key. Each intent becomes at most one mined transaction.

    SubmitTx (new id) -------------> QUEUED          (a known id: answer, or remember reply_to)
    QUEUED --eth_call or estimate reverts--> FAILED  (TxFailed permanent; no nonce is used)
    QUEUED --estimate gas +margin, price fees (cap), next nonce, sign, PERSIST--> PENDING
             (a flush persists what it accepted in the same transaction; what it could not
             sign, QUEUED)
             (a kind of call already estimated: simulated with its remembered limit, ADR 0013)
    PENDING --Broadcast: one JSON-RPC batch of eth_sendRawTransaction--> in the node's pool
    on every new head, for each PENDING intent:
       receipt of any of its attempts ---------> MINED (in memory)
       none, < K heads since signed -----------> re-send the same bytes ("already known" is fine)
       none for K heads, and the account's nonce did not move in K heads either, or the node
       says "underpriced" ---------------------> re-sign the SAME nonce, both fees +20% (a
                                                  new attempt, persisted first); the cap blocks
                                                  it: keep re-sending, counted as stuck
       its nonce used, none of ours mined -----> (seen on two heads) QUEUED again + alert
       node rejects the first attempt for good > FAILED; the nonce is FILLED by a self-transfer
                                                  (only known-permanent rejections; others retry)
    MINED --its block leaves the chain--> PENDING (re-broadcast the highest attempt)
    MINED --`confirmations` deep, block canonical--> CONFIRMED (TxConfirmed) | status 0: FAILED
    CONFIRMED/FAILED on chain --block leaves the chain within `watch_blocks`--> PENDING again

Carriers (ADR 0021): in a flush, QUEUED calls of one kind that ``sources.bundles`` can carry
(``commit``, ``finalize``) go into carriers of up to ``bundle_max`` calls, each an intent of the
signer's own that walks the machine above; its members are written PENDING with it and follow
it, answered with its receipt under their own ids:

    carrier signed ------------------------------> members PENDING (``bundle``), written with it
    carrier CONFIRMED ---------------------------> members CONFIRMED, each answered
    carrier reverts in simulation ---------------> dissolved: each call QUEUED alone, for good
    carrier reverted on chain / rejected --------> members HELD with it: confirmed if it is
                                                   mined with effect after all; alone once its
                                                   revert (or its nonce's filler) is deep

Start (``init`` + the first tick, phase SYNCING): load this chain's live intents (queued,
pending, or done within ``watch_blocks``: the intent index, ``storage.indexes``) and their
attempts from LMDB; check the node's chain id; compare the durable nonce counter with the
chain's latest and pending nonces (higher means the key was used outside the runner: counted,
audited, counter resynced); re-broadcast every PENDING intent. A key other than the counter's
(a rotation) with intents of the old key in flight or within the reorg watch DRAINS them first:
they are followed under the old address to their receipts and ``watch_blocks`` past them, sent
again as they are but never bumped, while new intents wait QUEUED; then the new key gets its own
counter (audited ``signer_key_changed``). Attempts are stored by nonce and seq, without the
address: after a rotation the new key's attempts may take the keys of old attempts deeper than
any reorg the signer watches (their intents keep their inclusion), and an old attempt found at a
nonce is told apart by its receipt's sender. A ``ConfigurationError`` (a node on another
chain) HALTS the signer: nothing is signed or sent, intents are still accepted and
persisted, and the error is in the snapshot. Transient RPC errors are counted and retried on
the next tick with a bounded backoff; they never crash the actor.

Nonces are gapless: a nonce is assigned only after simulation succeeded, in the same LMDB
transaction that stores the signed attempt and the counter; an attempt that can never be
broadcast is not abandoned silently but its nonce is filled with a zero-value self-transfer.
Outcomes go to ``reply_to`` by registered name. Intents are made durable in bursts (one LMDB
transaction per ``Flush``): a SubmitTx that a crash catches before its burst was written had no
effect yet and is covered by the requester's resend.

Args: ``chain``; ``max_batch`` (500 intents per flush), ``watch_blocks`` (64), ``bump_pct`` (20),
``max_backoff_s``. Services (``extra``): ``store``, ``evms[chain]``, ``signer_keys[chain]`` (a
``sources.keys.SigningKey``), ``chains[chain]`` (``chain_id``, ``confirmations``,
``max_fee_gwei``, ``poll_s``, ``bump_after_blocks`` (3), ``gas_margin_pct`` (20),
``bundle_max`` (1 when absent: each call alone; the daemon's configuration gives 20)).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from protocol.messages import FailureClass, Message, SubmitTx, Tick, TxConfirmed, TxFailed
from protocol.records import AuditEntry
from protocol.tx_records import (
    Fees,
    Inclusion,
    IntentState,
    NonceState,
    TxAttempt,
    TxIntent,
    attempt_key,
    attempts_prefix,
    intent_key,
    nonce_key,
)
from sources.bundles import BundleError, carrier_rule, rule_for
from sources.evm import (
    Block,
    ConfigurationError,
    EvmClient,
    EvmError,
    FeeHistory,
    RevertError,
    RpcError,
    TransientError,
)
from sources.keys import Eip1559Tx, SigningKey
from storage import Store, StoredValueError, Txn
from storage.indexes import intents_index
from supervision import SupervisedActor

log = logging.getLogger(__name__)

FEE_HISTORY_BLOCKS = 5
TIP_PERCENTILE = 50.0
TRANSFER_GAS = 21_000
RESEND_HEADS = 2
"""Heads without inclusion (and without the account's nonce moving) before the same bytes are
sent again."""
MAX_ERROR_TEXT = 300
_NEVER_ACCEPTED = re.compile(
    r"intrinsic gas too low|exceeds block gas limit|gas limit too high|oversized data|"
    r"too large|invalid sender|invalid signature|not supported|"
    r"priority fee per gas higher than max fee|tip higher than",
    re.IGNORECASE,
)
"""Node rejections that no re-send of the same transaction can change."""
_WRONG_CHAIN = re.compile(r"chain ?id", re.IGNORECASE)


def _kind(intent: TxIntent) -> tuple[str, bytes]:
    """What a remembered gas limit is per: the contract called and the function's selector
    (and, for a carrier, how many calls it makes)."""
    return intent.to.lower(), intent.data[:4] + len(intent.members).to_bytes(4, "big")


def _sent_by(receipt: Any, address: str) -> bool:
    """Whether a receipt (JSON) is of a transaction ``address`` sent."""
    return isinstance(receipt, dict) and str(receipt.get("from", "")).lower() == address.lower()


def _refused(call: Any) -> bool:
    """A simulation with a known gas limit that the node refused other than by a revert or for
    want of funds: the limit may be short (anvil: "EVM error OutOfGas")."""
    return (
        isinstance(call, RpcError)
        and not isinstance(call, RevertError)
        and call.tx_rejection != "insufficient_funds"
    )


class Flush(Message):
    """The signer's own nudge: persist what was accepted, then simulate, sign and persist."""

    kind: Literal["signer_flush"] = "signer_flush"


class Broadcast(Message):
    """The signer's own nudge: send every persisted attempt not yet sent by this incarnation."""

    kind: Literal["signer_broadcast"] = "signer_broadcast"


class Phase(StrEnum):
    SYNCING = "syncing"
    """Started; the nonce counter is not yet reconciled with the chain. Nothing is signed."""
    RUNNING = "running"
    DRAINING = "draining"
    """The key changed while intents signed with the old one were in flight or within the reorg
    watch: those are followed under the old address (sent again as they are, never bumped: the
    old key is gone) until they are confirmed and ``watch_blocks`` deep; new intents wait
    QUEUED. With none of them left, the new key takes over."""
    HALTED = "halted"
    """A configuration error (a node on another chain): nothing is sent until it clears."""


@dataclass(eq=False)
class _Live:
    """An intent in QUEUED or PENDING, with what only memory knows about it."""

    intent: TxIntent
    attempts: list[TxAttempt] = field(default_factory=list)
    receipt: Inclusion | None = None
    """Set when one of its attempts is mined (MINED); cleared by a reorg."""
    canonical_at: int = -1
    """The head at which the receipt's block was last checked canonical."""
    signed_head: int | None = None
    """The head when its newest attempt was signed (the bump clock); None until a head is seen."""
    sent: bool = False
    """Whether this incarnation has broadcast its newest attempt at least once."""
    last_send_head: int = -1
    bump_now: bool = False
    stuck: bool = False
    suspect_head: int | None = None
    """The head at which its nonce was seen used with none of its attempts mined."""
    tries: int = 0
    retry_at: float = 0.0
    """QUEUED after a transient failure: not simulated again before this time (clock)."""
    solo: bool = False
    """Never carried by a bundle (its carrier was dissolved): sent in a transaction of its own."""
    carrying: list[_Live] = field(default_factory=list)
    """A carrier made by this flush, not yet signed: the QUEUED intents it would carry."""

    @property
    def top(self) -> TxAttempt:
        return self.attempts[-1]


class Signer(SupervisedActor):
    # --- start: load from LMDB, then sync with the chain on the first tick ------------------

    def init(self) -> None:
        self.chain = str(self.ctx.args["chain"])
        extra = self.services.extra
        self.store: Store = extra["store"]
        self.evm: EvmClient = extra["evms"][self.chain]
        self.key: SigningKey = extra["signer_keys"][self.chain]
        config = extra["chains"][self.chain]
        self.chain_id = int(config.chain_id)
        self.confirmations = int(config.confirmations)
        self.cap = int(Decimal(str(config.max_fee_gwei)) * 10**9)
        self.poll_s = float(config.poll_s)
        self.bump_after = int(getattr(config, "bump_after_blocks", 3))
        self.gas_margin_pct = int(getattr(config, "gas_margin_pct", 20))
        args = self.ctx.args
        self.max_batch = int(args.get("max_batch", 500))
        self.bundle_max = int(getattr(config, "bundle_max", 1))
        self.watch_blocks = int(args.get("watch_blocks", 64))
        self.bump_pct = max(20, int(args.get("bump_pct", 20)))
        self.max_backoff_s = float(args.get("max_backoff_s", max(16 * self.poll_s, 1.0)))
        self.address = self.key.address
        self.phase = Phase.SYNCING
        self.halted = ""
        self.head, self.head_hash = -1, ""
        self.balance_wei: int | None = None
        self.unfunded = False
        """The node's last word on our balance was "insufficient funds"."""
        self.latest_seen, self.progress_head = -1, -1
        """The account's latest nonce, and the head at which it last changed."""
        self.failures = 0
        self.last_error = ""
        self.flush_pending = False
        self.fees_at: tuple[str, Fees] | None = None
        """The last flush's fees and the head they were quoted at: a flush at the same head
        reuses them (a block's base fee and rewards do not change until the next block)."""
        self.inbox: dict[str, TxIntent] = {}
        self.gas_limits: dict[tuple[str, bytes], int] = {}
        """Gas limit (estimate + margin) per kind of call, (contract, selector, calls carried):
        see ``_simulate``. Memory only: a restart estimates each kind once again."""
        self.live: dict[str, _Live] = {}
        self.queue: list[str] = []
        self.members: dict[str, list[TxIntent]] = {}
        """Each live carrier's members, as stored (ADR 0021)."""
        self.carried: dict[str, str] = {}
        """A member of a carrier in ``members`` -> the carrier."""
        self.held: dict[str, TxIntent] = {}
        """Carriers that FAILED but may still take effect, their members held with them until
        that is settled: reverted on chain (until ``watch_blocks`` deep), or rejected by the
        node (until the filler of their nonce is mined and deep)."""
        self.watch: dict[str, TxIntent] = {}
        self.stats = dict.fromkeys(
            ("confirmed", "failed", "bumps", "reorgs", "rpc_errors", "fillers", "resent"), 0
        )
        self._incomplete: EvmError | None = None
        self.index = intents_index(self.chain)
        # a counter that does not decode is reported and set again from the chain (``_sync``)
        self.nonces: NonceState | None = self.store.get_lenient(
            "txs", nonce_key(self.chain), NonceState
        )
        self._load()
        self.actor_ref.tell(Tick(now=self.clock.now()))

    def _load(self) -> None:
        """Rebuild the live intents, their attempts and the watched ones from LMDB: only those
        the intent index holds as live, so a start reads what is in flight or recent, not every
        intent ever confirmed (their counts come from the index)."""
        if self.index.missing(self.store):
            log.warning("%s: intents stored without an index; indexing them", self.name)
            self.store.write(self.index.rebuild)
        counts = self.index.counts(self.store) or {}
        self.stats["confirmed"] = counts.get(IntentState.CONFIRMED.value, 0)
        self.stats["failed"] = counts.get(IntentState.FAILED.value, 0)
        done: list[tuple[int, TxIntent]] = []
        carried: dict[str, TxIntent] = {}
        for key, buf in self.index.live_records(self.store):
            intent = self.store.decode("txs", key, buf, TxIntent)
            if intent is None:
                continue
            if intent.bundle and not intent.filler and intent.state is IntentState.PENDING:
                carried[intent.intent_id] = intent  # follows its carrier
            elif intent.state is IntentState.QUEUED or intent.state is IntentState.PENDING:
                self.live[intent.intent_id] = _Live(intent, solo=intent.alone)
                if intent.state is IntentState.QUEUED:
                    self.queue.append(intent.intent_id)
            elif intent.inclusion is not None:
                done.append((intent.inclusion.block_number, intent))
        newest = max((block for block, _ in done), default=0)
        deep = [i for block, i in done if block <= newest - self.watch_blocks]
        self.watch = {
            i.intent_id: i
            for block, i in done
            if block > newest - self.watch_blocks
            and not (i.bundle and not i.filler)  # a member: see its carrier
        }
        for live in self.live.values():  # the attempts of live intents only, by their nonce
            live.attempts = self._stored_attempts(live.intent)
        for intent_id, live in list(self.live.items()):
            if live.intent.state is IntentState.PENDING and not live.attempts:
                log.error("%s: %s is pending without attempts; queued again", self.name, intent_id)
                live.intent = live.intent.model_copy(
                    update={"state": IntentState.QUEUED, "nonce": None}
                )
                self.queue.append(intent_id)
        self._load_members(carried, [i for _, i in done])
        self._forget(self._settle_deep(deep))
        log.info(
            "%s: loaded %d queued, %d pending, %d watched; %d confirmed, %d failed; nonce "
            "counter %s",
            self.name,
            len(self.queue),
            len(self.live) - len(self.queue),
            len(self.watch),
            self.stats["confirmed"],
            self.stats["failed"],
            self.nonces.next_nonce if self.nonces else "new",
        )

    def _load_members(self, records: dict[str, TxIntent], done: list[TxIntent]) -> None:
        """Attach each carried member (PENDING with ``bundle``) to its carrier: live, watched
        after a revert on chain, or rejected by the node (FAILED without inclusion, held until
        its filler settles). The carrier's record is the truth about its members: one whose
        own record does not decode is made again from the carrier's calldata. A carrier whose
        record does not decode is rebuilt from its signed attempts; failing that its members
        are FAILED, never sent a second time (their requesters read the chain)."""
        by_carrier: dict[str, dict[str, TxIntent]] = {}
        for member in records.values():
            by_carrier.setdefault(member.bundle, {})[member.intent_id] = member
        # carriers whose members' records may all have failed to load: live ones, those held
        # after a revert, and those named by their nonce's filler
        for intent in [*(lv.intent for lv in self.live.values()), *done]:
            if intent.members and intent.state is not IntentState.CONFIRMED:
                by_carrier.setdefault(intent.intent_id, {})
            elif intent.filler and intent.bundle:
                by_carrier.setdefault(intent.bundle, {})
        settled = {i.intent_id: i for i in done}
        for carrier_id, found in by_carrier.items():
            live = self.live.get(carrier_id)
            carrier = live.intent if live is not None else settled.get(carrier_id)
            if carrier is None:
                key = intent_key(self.chain, carrier_id)
                carrier = self.store.get_lenient("txs", key, TxIntent)
            if carrier is None and found:
                carrier = self._rebuilt_carrier(carrier_id, list(found.values()))
            strays = [m for i, m in found.items() if carrier is None or i not in carrier.members]
            if strays:
                self._orphaned(strays)
            if carrier is None or not carrier.members:
                continue
            self._attach(carrier, {i: m for i, m in found.items() if i in carrier.members})
            if carrier.state is IntentState.CONFIRMED:  # its members' write was lost
                self._settle_members(carrier)
        for carrier in list(self.held.values()):
            rejected = carrier.inclusion is None
            if rejected and not any(
                i.filler and i.bundle == carrier.intent_id
                for i in [*(lv.intent for lv in self.live.values()), *self.watch.values()]
            ):  # its filler is settled: the carrier's nonce is used for good
                self._dissolve_held(carrier, "its nonce was filled")

    def _attach(self, carrier: TxIntent, found: dict[str, TxIntent]) -> None:
        calls = self._member_calls(carrier)
        mine: list[TxIntent] = []
        for n, member_id in enumerate(carrier.members):
            record = found.get(member_id)
            if record is None:
                call = calls[n] if n < len(calls) else b""
                record = self._remade_member(carrier, member_id, call)
            mine.append(record)
            self.carried[member_id] = carrier.intent_id
        self.members[carrier.intent_id] = mine
        if carrier.state is IntentState.FAILED:
            self.held[carrier.intent_id] = carrier

    def _rebuilt_carrier(self, carrier_id: str, found: list[TxIntent]) -> TxIntent | None:
        """A carrier whose record does not decode, from its members' records and its signed
        attempts: PENDING again at its newest attempts' nonce, followed to its receipt (its
        nonce is never left a gap); FAILED and held if the node had rejected it (a filler
        names it). None when that cannot be known (as ``_rebuilt``)."""
        attempts = self._attempts_of(carrier_id, None)
        if not attempts:
            return None
        nonce = max(a.nonce for a in attempts)
        attempts = [a for a in attempts if a.nonce == nonce]
        filler_key = intent_key(self.chain, f"{self.chain}:filler:{nonce}")
        filler = self.store.get_lenient("txs", filler_key, TxIntent)
        rejected = filler is not None and filler.bundle == carrier_id
        rule = rule_for(found[0].data)
        try:
            data = rule.carrier([m.data for m in found]) if rule is not None else b""
        except BundleError:
            data = b""
        carrier = TxIntent.model_construct(
            intent_id=carrier_id,
            chain=self.chain,
            to=found[0].to,
            data=data,
            value=0,
            reply_to="",
            state=IntentState.FAILED if rejected else IntentState.PENDING,
            nonce=nonce,
            created_at=self.clock.now(),
            members=tuple(m.intent_id for m in found),
            reason="rejected by the node (rebuilt)" if rejected else "",
        )
        detail = {"nonce": nonce, "attempts": len(attempts), "members": len(found)}
        self._write(
            [(intent_key(self.chain, carrier_id), carrier)],
            self._audit("intent_record_rebuilt", carrier_id, detail),
        )
        if not rejected:
            self.live[carrier_id] = _Live(carrier, attempts)
        log.warning("%s: carrier %s rebuilt from its attempts", self.name, carrier_id)
        return carrier

    def _attempts_of(self, intent_id: str, nonce: int | None) -> list[TxAttempt] | None:
        """The stored attempts of ``intent_id`` (at ``nonce``, or any), in ``seq`` order; None
        when they cannot be proven complete: an attempt record that does not decode, or a key
        rotation in the audit log (attempts are stored by nonce without the address, so a new
        key's may have taken an old one's place)."""
        skipped: list[StoredValueError] = []
        attempts = [
            a
            for _, a in self.store.items(
                "txs",
                attempts_prefix(self.chain, nonce),
                expect=TxAttempt,
                on_bad_value=skipped.append,
            )
            if a.intent_id == intent_id
        ]
        rotated = any(
            entry.actor == self.name
            and entry.action in ("signer_key_changed", "signer_key_draining")
            for _, entry in self.store.items("audit", expect=AuditEntry)
        )
        if skipped or rotated:
            return None
        return sorted(attempts, key=lambda a: (a.nonce, a.seq))

    def _orphaned(self, members: list[TxIntent]) -> None:
        reason = "its carrier's record does not decode: whether it was sent cannot be known"
        orphans = [self._failed(m, reason) for m in members]
        log.error("%s: %d members without a readable carrier: FAILED", self.name, len(orphans))
        self._write([(intent_key(self.chain, m.intent_id), m) for m in orphans])
        self.stats["failed"] += len(orphans)
        for orphan in orphans:
            self._reply(orphan)

    def _member_calls(self, carrier: TxIntent) -> list[bytes]:
        rule = carrier_rule(carrier.data)
        try:
            return rule.members(carrier.data) if rule is not None else []
        except BundleError:
            return []

    def _remade_member(self, carrier: TxIntent, member_id: str, call: bytes) -> TxIntent:
        log.warning(
            "%s: the record of %s (carried by %s) is missing or does not decode; made again "
            "from its carrier",
            self.name,
            member_id,
            carrier.intent_id,
        )
        return TxIntent.model_construct(
            intent_id=member_id,
            chain=self.chain,
            to=carrier.to,
            data=call,
            value=0,
            reply_to="",
            state=IntentState.PENDING,
            nonce=carrier.nonce,
            created_at=carrier.created_at,
            bundle=carrier.intent_id,
        )

    def _forget(self, intents: list[TxIntent]) -> None:
        """Done intents deeper than the reorg watch (a carrier with its members): the index no
        longer lists them as live."""
        if intents:
            keys = [intent_key(self.chain, m) for i in intents for m in (i.intent_id, *i.members)]
            self.store.write(lambda txn: self.index.forget(txn, keys))

    def _stored_attempts(self, intent: TxIntent) -> list[TxAttempt]:
        """The attempts persisted for ``intent``, in ``seq`` order (a filler may share a nonce)."""
        if intent.nonce is None:
            return []
        at_nonce = attempts_prefix(self.chain, intent.nonce)
        return [
            attempt
            for _, attempt in self.store.items("txs", at_nonce, expect=TxAttempt)
            if attempt.intent_id == intent.intent_id
        ]

    def _sync(self) -> None:
        """Reconcile the counter with the chain, then re-broadcast what is in flight. A new key
        with intents of the old one still in flight drains them first (DRAINING)."""
        chain_id = self.evm.chain_id()
        if chain_id != self.chain_id:
            raise ConfigurationError(
                f"the node says chain id {chain_id}; {self.chain} is configured as {self.chain_id}"
            )
        known = self.nonces
        if known is not None and known.address != self.address:
            # the old key's intents in flight, and those done but still within the reorg
            # watch (a reorg would put them back in flight, and only the old key's nonces
            # and receipts can settle them)
            old = sum(1 for lv in self.live.values() if lv.attempts) + len(self.watch)
            if old:
                self._check_external(*self._nonce_counts(known.address))
                self._drain(known.address, old)
                return
        latest, pending = self._nonce_counts(self.address)
        if known is None or known.address != self.address:
            # past the chain's count and past the attempts of live intents (a counter that did
            # not decode is set again here, and signed attempts may not have reached the node)
            signed = max((lv.top.nonce + 1 for lv in self.live.values() if lv.attempts), default=0)
            fresh = NonceState(
                chain=self.chain,
                address=self.address,
                next_nonce=max(latest, pending, signed),
                external_nonce_use=known.external_nonce_use if known else 0,
            )
            action = "nonce_initialised" if known is None else "signer_key_changed"
            detail = fresh.model_dump(mode="json")
            if known is not None:
                detail["old_address"] = known.address
                log.warning("%s: signing key changed from %s", self.name, known.address)
            self._write([(nonce_key(self.chain), fresh)], self._audit(action, detail=detail))
            self.nonces = fresh
        self._check_external(latest, pending)
        self.phase, self.halted = Phase.RUNNING, ""
        log.info("%s: synced at nonce %d (%s)", self.name, self._next_nonce, self.address)
        if any(lv.attempts for lv in self.live.values()):
            self.actor_ref.tell(Broadcast())
        if self.queue or self.inbox:
            self._schedule_flush()

    def _drain(self, old_address: str, old: int) -> None:
        """Enter (or stay in) DRAINING: the old key's intents are followed to their receipts
        and past the reorg watch; nothing new is signed until none is left (``_sync`` checks
        each tick)."""
        if self.phase is Phase.DRAINING:
            return
        log.warning(
            "%s: the signing key changed from %s to %s with %d intents of the old key in "
            "flight or within %d blocks: following them before the new key signs",
            self.name,
            old_address,
            self.address,
            old,
            self.watch_blocks,
        )
        detail = {"old_address": old_address, "address": self.address, "old_intents": old}
        self._write([], self._audit("signer_key_draining", detail=detail))
        self.phase, self.halted = Phase.DRAINING, ""
        self.actor_ref.tell(Broadcast())

    # --- messages ------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        match message:
            case SubmitTx():
                self._accept(message)
            case Flush():
                self.flush_pending = False
                self._flush()
            case Broadcast():
                if self.phase in (Phase.RUNNING, Phase.DRAINING):
                    self._guarded(lambda: self._send(self._unsent(), self.head))
            case Tick():
                delay = self._poll()
                self.send_later(delay, self.name, Tick(now=self.clock.now()))
            case _:
                return self.unhandled(message)
        return None

    def snapshot(self) -> Any:
        pending = [lv for lv in self.live.values() if lv.attempts]
        nodes = self.evm.health()
        return {
            "chain": self.chain,
            "address": self.address,
            "phase": self.phase.value,
            "draining_from": self._account if self.phase is Phase.DRAINING else None,
            "halted": self.halted,
            "head": self.head,
            "nonce": self._next_nonce,
            "queued": len(self.queue) + len(self.inbox),
            "in_flight": len(pending),
            "mined": sum(1 for lv in pending if lv.receipt is not None),
            "stuck": sum(1 for lv in pending if lv.stuck),
            "external_nonce_use": self.nonces.external_nonce_use if self.nonces else 0,
            "balance_wei": self.balance_wei,
            "funded": None if self.balance_wei is None else not self.unfunded,
            "watched": len(self.watch),
            "carriers": len(self.members.keys() - self.held.keys()),
            "carried": len(self.carried),
            "held": len(self.held),
            "last_error": self.last_error,
            # the chain's client, shared with the listener and the resolvers: every request
            # (retries included) and every one that failed
            "rpc_requests": sum(node.calls for node in nodes),
            "rpc_failures": sum(node.failures for node in nodes),
            **self.stats,
        }

    # --- SubmitTx: a known id is the same intent; a new one is accepted ------------------

    def _accept(self, msg: SubmitTx) -> None:
        intent_id = msg.intent_id
        if msg.chain != self.chain:
            reason = f"{self.name} signs for {self.chain}, not {msg.chain}"
            self.registry.tell(
                msg.reply_to, TxFailed(intent_id=intent_id, reason=reason, permanent=True)
            )
            return
        queued = self.inbox.get(intent_id)
        if queued is not None:
            self.inbox[intent_id] = queued.model_copy(update={"reply_to": msg.reply_to})
            return
        live = self.live.get(intent_id)
        if live is not None:
            if live.intent.reply_to != msg.reply_to:
                live.intent = live.intent.model_copy(update={"reply_to": msg.reply_to})
                self._write([(intent_key(self.chain, intent_id), live.intent)])
            return
        carrier = self.carried.get(intent_id)
        if carrier is not None:
            self._readdress_member(carrier, intent_id, msg.reply_to)
            return
        try:
            done = self.watch.get(intent_id) or self.store.get(
                "txs", intent_key(self.chain, intent_id), TxIntent
            )
        except StoredValueError as exc:
            self.store.report_bad_value(exc)
            rebuilt = self._rebuilt(msg)
            if rebuilt is None:  # what became of it cannot be known: no guess, no second tx
                reason = (
                    f"{self.name} cannot read its stored record of this intent, and cannot "
                    "prove its signed attempts complete (a key rotation, or attempts that do not "
                    "decode): nothing is signed for it"
                )
                self.registry.tell(
                    msg.reply_to, TxFailed(intent_id=intent_id, reason=reason, permanent=True)
                )
                return
            if rebuilt:
                return  # followed again from its signed attempts
            done = None  # never signed: accepted as new, its record written again
        if done is not None:
            self._reply(done.model_copy(update={"reply_to": msg.reply_to}))
            return
        self.inbox[intent_id] = self._intent_of(msg)
        self._schedule_flush()

    def _readdress_member(self, carrier: str, intent_id: str, reply_to: str) -> None:
        """A carried intent asked for again: its outcome goes to ``reply_to`` from now on."""
        members = self.members[carrier]
        for n, member in enumerate(members):
            if member.intent_id == intent_id and member.reply_to != reply_to:
                members[n] = member.model_copy(update={"reply_to": reply_to})
                self._write([(intent_key(self.chain, intent_id), members[n])])

    def _intent_of(self, msg: SubmitTx, **fields: Any) -> TxIntent:
        """The intent ``msg`` asks for (QUEUED unless ``fields`` say otherwise), built without
        re-validation: every field comes from the validated SubmitTx or from the signer."""
        return TxIntent.model_construct(
            intent_id=msg.intent_id,
            chain=self.chain,
            to=msg.to,
            data=msg.data,
            value=msg.value,
            reply_to=msg.reply_to,
            created_at=self.clock.now(),
            **fields,
        )

    def _rebuilt(self, msg: SubmitTx) -> bool | None:
        """An intent whose record does not decode, from a scan of this chain's attempts (a
        rare path): True if attempts were signed for it (PENDING again at the newest one's
        nonce, followed to its receipt: never signed twice); False if none was; None if that
        cannot be known: an attempt record that does not decode, or a key rotation in the
        audit log (attempts are stored by nonce without the address, so a new key's may have
        taken an old one's place). A member of a confirmed carrier (which has no attempts of its
        own) is answered from the carrier."""
        member = self._member_found(msg)
        if member is not False:
            return member
        attempts = self._attempts_of(msg.intent_id, None)
        if attempts is None:
            return None
        if not attempts:
            return False
        nonce = max(a.nonce for a in attempts)
        intent = self._intent_of(msg, state=IntentState.PENDING, nonce=nonce)
        detail = {"nonce": nonce, "attempts": len(attempts)}
        self._write(
            [(intent_key(self.chain, intent.intent_id), intent)],
            self._audit("intent_record_rebuilt", intent.intent_id, detail),
        )
        ours = sorted((a for a in attempts if a.nonce == nonce), key=lambda a: a.seq)
        self.live[intent.intent_id] = _Live(intent, ours)
        log.warning(
            "%s: the record of %s did not decode; rebuilt as PENDING at nonce %d from its %d "
            "stored attempts",
            self.name,
            intent.intent_id,
            nonce,
            len(ours),
        )
        return True

    def _member_found(self, msg: SubmitTx) -> bool | None:
        """Whether ``msg``'s intent was carried by a confirmed carrier still on record (found
        by its attempts): True, its record written again and answered. None if that cannot be
        known (a carrier lists it but is not settled, or a carrier's record does not decode);
        False if no carrier lists it."""
        skipped: list[StoredValueError] = []
        carriers = {
            a.intent_id
            for _, a in self.store.items(
                "txs", attempts_prefix(self.chain), expect=TxAttempt, on_bad_value=skipped.append
            )
            if a.intent_id.startswith(f"{self.chain}:bundle:")
        }
        unknown = bool(skipped)  # an attempt that does not decode may be a carrier's
        for carrier_id in sorted(carriers):
            carrier = self.store.get_lenient("txs", intent_key(self.chain, carrier_id), TxIntent)
            unknown = unknown or carrier is None
            if carrier is None or msg.intent_id not in carrier.members:
                continue
            if carrier.state is not IntentState.CONFIRMED:
                return None
            member = self._intent_of(
                msg,
                state=IntentState.CONFIRMED,
                nonce=carrier.nonce,
                inclusion=carrier.inclusion,
                bundle=carrier_id,
            )
            self._write(
                [(intent_key(self.chain, member.intent_id), member)],
                self._audit("intent_record_rebuilt", member.intent_id, {"carrier": carrier_id}),
            )
            self._reply(member)
            return True
        return None if unknown else False

    def _schedule_flush(self) -> None:
        if not self.flush_pending:
            self.flush_pending = True
            self.actor_ref.tell(Flush())

    # --- QUEUED -> PENDING: persist, simulate, estimate, price, nonce, sign, persist ------

    def _flush(self) -> None:
        """Accept the inbox, then sign what is ready. The accepted intents are written in the
        same transaction as the signatures (one durable write a flush); if signing stops
        before that write (an RPC error), or nothing is ready, they are written QUEUED."""
        accepted = list(self.inbox.values())
        self.inbox.clear()
        for intent in accepted:
            self.live[intent.intent_id] = _Live(intent)
            self.queue.append(intent.intent_id)
        unsaved = {intent.intent_id: intent for intent in accepted}
        try:
            if self.phase is Phase.RUNNING:
                self._sign_ready(unsaved)
        finally:
            self._write([(intent_key(self.chain, i), intent) for i, intent in unsaved.items()])
        if self.phase is Phase.RUNNING and self._queued_ready():
            self._schedule_flush()

    def _sign_ready(self, unsaved: dict[str, TxIntent]) -> None:
        now = self.clock.now()
        ready = [i for i in self.queue if self.live[i].retry_at <= now][: self.max_batch]
        if not ready:
            return
        self._guarded(lambda: self._sign_queued(ready, unsaved))
        for intent_id in ready:  # still queued (a transient error): retry later, backing off
            lv = self.live.get(intent_id)
            if lv is not None and not lv.attempts:
                lv.tries += 1
                lv.retry_at = now + self._backoff(lv.tries)

    def _queued_ready(self) -> bool:
        now = self.clock.now()
        return any(self.live[i].retry_at <= now for i in self.queue)

    def _sign_queued(self, intent_ids: list[str], unsaved: dict[str, TxIntent]) -> None:
        """Simulate, price, number, sign and persist ``intent_ids``; ``unsaved`` (accepted, not
        yet written) goes into the same write, and is emptied by it."""
        self._incomplete = None
        lives = self._bundled([self.live[i] for i in intent_ids])
        fees = self._flush_fees()
        outcomes = self._simulate(lives)
        assert self.nonces is not None
        nonce = self.nonces.next_nonce
        signed: list[tuple[_Live, TxIntent, TxAttempt]] = []
        failed: list[TxIntent] = []
        dissolved: list[tuple[TxIntent, list[TxIntent]]] = []
        members: dict[str, list[TxIntent]] = {}
        for lv, outcome in zip(lives, outcomes, strict=True):
            if isinstance(outcome, str) and lv.intent.members:
                self._dissolve_unsigned(lv, outcome, dissolved)
            elif isinstance(outcome, str):
                failed.append(self._failed(lv.intent, outcome))
            elif outcome is not None:
                intent = lv.intent.model_copy(update={"state": IntentState.PENDING, "nonce": nonce})
                signed.append((lv, intent, self._sign(intent, 0, fees, outcome)))
                if intent.members:
                    members[intent.intent_id] = self._members_at(lv, intent)
                nonce += 1
        counter = self.nonces.model_copy(update={"next_nonce": nonce})
        puts: list[tuple[bytes, Any]] = [(nonce_key(self.chain), counter)]
        puts += [(intent_key(self.chain, i.intent_id), i) for _, i, _ in signed]
        puts += [(attempt_key(self.chain, a.nonce, a.seq), a) for _, _, a in signed]
        puts += [(intent_key(self.chain, i.intent_id), i) for i in failed]
        carried = [m for ms in members.values() for m in ms]
        alone = [m for _, ms in dissolved for m in ms]
        puts += [(intent_key(self.chain, i.intent_id), i) for i in carried + alone]
        puts += [(intent_key(self.chain, c.intent_id), c) for c, _ in dissolved]
        done = {i.intent_id for i in failed} | {i.intent_id for _, i, _ in signed}
        done |= {m.intent_id for m in carried} | {c.intent_id for c, _ in dissolved}
        written = done | {m.intent_id for m in alone}
        puts += [(intent_key(self.chain, i), q) for i, q in unsaved.items() if i not in written]
        self._write(puts)  # durable before anything is broadcast
        unsaved.clear()
        self.nonces = counter
        for lv, intent, attempt in signed:
            lv.intent, lv.attempts, lv.carrying = intent, [attempt], []
            lv.signed_head = self.head if self.head >= 0 else None
        self.queue = [i for i in self.queue if i not in done]
        self._carriers_written(signed, members, dissolved)
        for intent in failed:
            del self.live[intent.intent_id]
            self.stats["failed"] += 1
            log.warning("%s: %s failed for good: %s", self.name, intent.intent_id, intent.reason)
            self._reply(intent)
        if signed:
            log.debug("%s: signed nonces %d..%d", self.name, signed[0][1].nonce, nonce - 1)
            self.actor_ref.tell(Broadcast())
        self._raise_if_incomplete()

    # --- carriers: many calls of one kind in one transaction (ADR 0021) --------------------

    def _bundled(self, lives: list[_Live]) -> list[_Live]:
        """``lives`` with the calls one transaction can make for many (``sources.bundles``) put
        into carriers of up to ``bundle_max`` members, one kind of call (contract, function)
        each. A new carrier lives in memory only: it is written, with its members, when it is
        signed; until then its members are QUEUED as before."""
        if self.bundle_max < 2:
            return lives
        out: list[_Live] = []
        groups: dict[tuple[str, bytes], list[_Live]] = {}
        for lv in lives:
            intent = lv.intent
            if (
                lv.solo
                or intent.filler
                or intent.members
                or intent.value
                or not rule_for(intent.data)
            ):
                out.append(lv)
            else:
                groups.setdefault(_kind(intent), []).append(lv)
        for group in groups.values():
            for start in range(0, len(group), self.bundle_max):
                chunk = group[start : start + self.bundle_max]
                carrier = self._carrier(chunk) if len(chunk) > 1 else None
                if carrier is None:
                    out += chunk
                else:
                    out.append(carrier)
        return out

    def _carrier(self, chunk: list[_Live]) -> _Live | None:
        """A new carrier of ``chunk``'s calls; its id is a digest of its members' ids and the
        nonce counter."""
        rule = rule_for(chunk[0].intent.data)
        assert rule is not None
        try:
            data = rule.carrier([lv.intent.data for lv in chunk])
        except BundleError as exc:
            log.warning("%s: cannot carry %d calls together: %s", self.name, len(chunk), exc)
            for lv in chunk:
                lv.solo = True
            return None
        ids = tuple(lv.intent.intent_id for lv in chunk)
        # with the counter: a carrier of the same calls made again is another intent
        seed = "\n".join((*ids, str(self._next_nonce), str(len(self.live))))
        digest = hashlib.sha256(seed.encode()).hexdigest()[:32]
        carrier = TxIntent.model_construct(
            intent_id=f"{self.chain}:bundle:{digest}",
            chain=self.chain,
            to=chunk[0].intent.to,
            data=data,
            value=0,
            reply_to="",
            created_at=self.clock.now(),
            members=ids,
        )
        return _Live(carrier, carrying=chunk)

    def _carriers_written(
        self,
        signed: list[tuple[_Live, TxIntent, TxAttempt]],
        members: dict[str, list[TxIntent]],
        dissolved: list[tuple[TxIntent, list[TxIntent]]],
    ) -> None:
        """After a flush's write: signed carriers are live in their members' place; dissolved
        ones are gone, their members QUEUED alone."""
        for lv, intent, _ in signed:
            if intent.members:
                self.live[intent.intent_id] = lv
                self.members[intent.intent_id] = members[intent.intent_id]
                for member in intent.members:
                    self.live.pop(member, None)
                    self.carried[member] = intent.intent_id
        for carrier, alone in dissolved:
            self._went_alone(carrier.intent_id, alone)
            self.stats["failed"] += 1  # the carrier's record, as the index counts it

    def _members_at(self, lv: _Live, carrier: TxIntent) -> list[TxIntent]:
        """The records of ``carrier``'s members, PENDING at its nonce."""
        mine = [c.intent for c in lv.carrying] or self.members.get(carrier.intent_id, [])
        update = {"state": IntentState.PENDING, "nonce": carrier.nonce, "bundle": carrier.intent_id}
        return [m.model_copy(update=update) for m in mine]

    def _dissolve_unsigned(
        self, lv: _Live, reason: str, dissolved: list[tuple[TxIntent, list[TxIntent]]]
    ) -> None:
        """A carrier whose call can never succeed (one member's reverts them all): its members
        go on alone. A new one was never written: its members are simply QUEUED alone; one
        written before (QUEUED again after its nonce was used elsewhere) is added to
        ``dissolved``, to be written FAILED with its members QUEUED alone."""
        log.warning(
            "%s: carrier of %d calls dissolved, each goes alone: %s",
            self.name,
            len(lv.intent.members),
            reason,
        )
        for member in lv.carrying:
            member.solo = True
        if not lv.carrying:
            dissolved.append(self._dissolved(lv.intent, reason))

    def _dissolved(
        self, carrier: TxIntent, reason: str, inclusion: Inclusion | None = None
    ) -> tuple[TxIntent, list[TxIntent]]:
        """A written carrier given up: FAILED with no members, and its members QUEUED alone.
        Only where none of its attempts can still take effect: reverted in simulation after its
        nonce was used elsewhere, reverted on chain and deeper than any reorg watched, or its
        nonce filled for good (``_settle_deep``)."""
        update = {
            "state": IntentState.QUEUED,
            "nonce": None,
            "bundle": "",
            "inclusion": None,
            "alone": True,
        }
        alone = [m.model_copy(update=update) for m in self.members.get(carrier.intent_id, [])]
        failed = self._failed(carrier, f"dissolved, {len(alone)} calls go alone: {reason}")
        return failed.model_copy(update={"members": (), "inclusion": inclusion}), alone

    def _went_alone(self, carrier_id: str, alone: list[TxIntent]) -> None:
        """After ``_dissolved`` was written: its members are QUEUED intents of their own."""
        self.members.pop(carrier_id, None)
        self.held.pop(carrier_id, None)
        self.live.pop(carrier_id, None)
        self.queue = [i for i in self.queue if i != carrier_id]
        for member in alone:
            self.carried.pop(member.intent_id, None)
            self.live[member.intent_id] = _Live(member, solo=True)
            self.queue.append(member.intent_id)
        if alone:
            self._schedule_flush()

    def _dissolve_held(self, carrier: TxIntent, reason: str) -> TxIntent:
        """A held carrier whose fate is settled without effect: dissolved, written; the record
        as it is now."""
        dissolved, alone = self._dissolved(carrier, reason, carrier.inclusion)
        self._write([(intent_key(self.chain, i.intent_id), i) for i in [dissolved, *alone]])
        self._went_alone(carrier.intent_id, alone)
        if carrier.intent_id in self.watch:
            self.watch[carrier.intent_id] = dissolved
        log.warning(
            "%s: carrier %s is settled without effect (%s): its %d calls go alone",
            self.name,
            carrier.intent_id,
            reason,
            len(alone),
        )
        return dissolved

    def _settle_members(self, carrier: TxIntent) -> list[TxIntent]:
        """A carrier CONFIRMED: its members too (written, answered); their records."""
        update = {"state": IntentState.CONFIRMED, "inclusion": carrier.inclusion, "reason": ""}
        members = [m.model_copy(update=update) for m in self.members.pop(carrier.intent_id, [])]
        self.held.pop(carrier.intent_id, None)
        self._write([(intent_key(self.chain, m.intent_id), m) for m in members])
        for member in members:
            self.carried.pop(member.intent_id, None)
            self.stats["confirmed"] += 1
            self._reply(member)
        return members

    def _settle_deep(self, deep: list[TxIntent]) -> list[TxIntent]:
        """Done intents now deeper than any reorg watched: a carrier that reverted on chain
        can no longer take effect, nor one whose nonce its filler took; their members go
        alone. Returns ``deep`` as the records now are (to be forgotten)."""
        out: list[TxIntent] = []
        for intent in deep:
            now = intent
            if intent.members and intent.state is IntentState.FAILED:
                now = self._dissolve_held(intent, "reverted on chain")
            elif intent.filler and intent.bundle in self.held:
                self._dissolve_held(self.held[intent.bundle], "its nonce was filled")
            out.append(now)
        return out

    def _simulate(self, lives: list[_Live]) -> list[int | str | None]:
        """Per intent, as one JSON-RPC batch: its gas limit, a failure reason (str) if the
        call can never succeed, or None to retry later.

        An intent of a kind (contract, selector) whose gas limit is known is simulated with
        that limit as its gas: success proves the limit enough at the latest state, and no
        estimate is needed. Any other kind, or a known limit the simulation finds short (gas
        can depend on the arguments), is simulated and estimated (estimate + margin), and the
        highest limit of the kind is remembered. ADR 0013.
        """
        calls: list[tuple[str, list[Any]]] = []
        limits = [self.gas_limits.get(_kind(lv.intent)) for lv in lives]
        for lv, limit in zip(lives, limits, strict=True):
            params = {
                "from": self.address,
                "to": lv.intent.to,
                "data": "0x" + lv.intent.data.hex(),
                "value": hex(lv.intent.value),
            }
            if limit is None:
                calls += [("eth_call", [params, "latest"]), ("eth_estimateGas", [params])]
            else:
                calls.append(("eth_call", [{**params, "gas": hex(limit)}, "latest"]))
        results = iter(self._batch(calls))
        outcomes: list[int | str | None] = []
        short: list[int] = []
        for n, (lv, limit) in enumerate(zip(lives, limits, strict=True)):
            if limit is None:
                outcome = self._simulated(next(results), next(results))
                if isinstance(outcome, int):
                    outcome = outcome * (100 + self.gas_margin_pct) // 100
                    kind = _kind(lv.intent)
                    self.gas_limits[kind] = max(outcome, self.gas_limits.get(kind, 0))
            elif _refused(call := next(results)):  # out of gas, or so: estimate it afresh
                self.gas_limits.pop(_kind(lv.intent), None)
                short.append(n)
                outcome = None
            else:
                outcome = self._simulated(call, hex(limit))  # the limit, or why it cannot be
            outcomes.append(outcome)
        if short:
            for n, again in zip(short, self._simulate([lives[n] for n in short]), strict=True):
                outcomes[n] = again
        return outcomes

    def _simulated(self, call: Any, estimate: Any) -> int | str | None:
        """The gas estimate; a failure reason (str) if the call can never succeed; None to retry."""
        for result, what in ((call, "simulation"), (estimate, "gas estimate")):
            if isinstance(result, RevertError):
                return f"reverted in {what}: {result.reason}"
            if isinstance(result, RpcError) and result.tx_rejection == "insufficient_funds":
                self._note(result)
                self.unfunded = True
                return None
            if isinstance(result, RpcError) and result.failure is FailureClass.PERMANENT:
                return f"{what} refused by the node: {result.message}"
            if isinstance(result, Exception):
                return None
        try:
            return int(estimate, 16)
        except (TypeError, ValueError):
            self._incomplete = TransientError(f"malformed gas estimate {estimate!r:.40}")
            return None

    # --- PENDING -> broadcast -----------------------------------------------------------

    def _unsent(self) -> list[_Live]:
        return [lv for lv in self.live.values() if lv.attempts and not lv.sent]

    def _send(self, lives: list[_Live], head: int) -> None:
        """Broadcast each intent's newest attempt, as one JSON-RPC batch; sort the answers."""
        if not lives:
            return
        raws = [("eth_sendRawTransaction", ["0x" + lv.top.raw.hex()]) for lv in lives]
        for lv, result in zip(lives, self._batch(raws), strict=True):
            if isinstance(result, RpcError):
                rejection = result.tx_rejection
                if rejection is None and _WRONG_CHAIN.search(result.message):
                    raise ConfigurationError(f"the node refuses our chain id: {result.message}")
                if rejection is None and _NEVER_ACCEPTED.search(result.message):
                    self._rejected(lv, result.message)
                    continue
                if rejection is None:  # unknown: maybe passing (pool full, nonce gap); retry
                    self._note(result)
                    continue
                if rejection == "underpriced":
                    lv.bump_now = True
                elif rejection == "insufficient_funds":
                    self._note(result)
                    self.unfunded = True
                # "already known" is success; "nonce too low" is sorted out by the receipts
            elif isinstance(result, Exception):
                continue
            else:
                self.unfunded = False
            lv.sent, lv.last_send_head = True, head
        self._raise_if_incomplete()

    # --- every new head: receipts, reorgs, confirmations, bumps ---------------------------

    def _poll(self) -> float:
        """One tick; returns the delay until the next one (backs off on errors)."""
        try:
            if self.phase is not Phase.RUNNING:
                self._sync()
            block = self.evm.get_block("latest")
            if block is None:
                raise TransientError("the node has no latest block")
            if (block.number, block.hash) != (self.head, self.head_hash):
                self._new_head(block)
                self.head, self.head_hash = block.number, block.hash
            if self.inbox or self._queued_ready():
                self._schedule_flush()
        except ConfigurationError as exc:
            self._halt(exc)
            return self.max_backoff_s
        except EvmError as exc:
            self._note(exc)
            self.failures += 1
            return self._backoff(self.failures)
        self.failures = 0
        return self.poll_s

    def _backoff(self, failures: int) -> float:
        return float(min(self.max_backoff_s, self.poll_s * 2 ** min(failures, 30)))

    def _new_head(self, block: Block) -> None:
        """Everything a new head asks for; idempotent, so a head that failed halfway is redone
        (``self.head`` moves only when all of it succeeded)."""
        self._incomplete = None
        head = block.number
        since = self.head if self._extends(block) else -1
        latest, pending = self._nonce_counts()
        self._check_external(latest, pending)
        self._find_receipts(head, latest)
        self._check_canonical(head, since)
        self._confirm(head)
        self._resend_and_bump(head, latest)
        deep = [
            intent
            for intent in self.watch.values()
            if intent.inclusion and intent.inclusion.block_number <= head - self.watch_blocks
        ]
        self._forget(self._settle_deep(deep))
        for intent in deep:
            del self.watch[intent.intent_id]
        self._raise_if_incomplete()

    def _find_receipts(self, head: int, latest: int) -> None:
        """PENDING intents whose nonce the chain has used: which attempt was mined?"""
        lives = [
            lv
            for lv in self.live.values()
            if lv.attempts and lv.receipt is None and lv.top.nonce < latest
        ]
        calls = [("eth_getTransactionReceipt", [a.tx_hash]) for lv in lives for a in lv.attempts]
        results = iter(self._batch(calls))
        for lv in lives:
            found, unknown = None, False
            for _ in lv.attempts:
                raw = next(results)
                if isinstance(raw, Exception):
                    unknown = True
                elif raw is not None:
                    found = self._inclusion(raw)
                    unknown = unknown or found is None
            if found is not None:
                lv.receipt, lv.suspect_head, lv.stuck, lv.bump_now = found, None, False, False
            elif not unknown:
                self._nonce_used_elsewhere(lv, head)

    def _extends(self, block: Block) -> bool:
        """Whether ``block`` descends from the last head fully handled (no reorg at or below
        it), so that what was canonical there still is."""
        if self.head < 0 or block.number <= self.head:
            return False
        if block.parent_hash == self.head_hash:
            return True
        then = self.evm.get_block(self.head)
        return then is not None and then.hash == self.head_hash

    def _check_canonical(self, head: int, since: int) -> None:
        """Every mined or recently done intent whose block is no longer canonical: a reorg.
        Blocks up to ``since`` are known canonical (every receipt there was found and checked
        when that head was handled); the others are fetched and compared."""
        mined = [(lv.intent.intent_id, lv.receipt) for lv in self.live.values() if lv.receipt]
        watched = [(i, intent.inclusion) for i, intent in self.watch.items() if intent.inclusion]
        numbers = sorted({i.block_number for _, i in mined + watched if i.block_number > since})
        blocks = self._batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
        canonical: dict[int, str | None] = {}
        for number, found in zip(numbers, blocks, strict=True):
            if not isinstance(found, Exception):
                canonical[number] = found.get("hash") if isinstance(found, dict) else None
        for intent_id, inclusion in mined + watched:
            number = inclusion.block_number
            if number > since and number not in canonical:
                continue  # unknown for now: the head is redone
            if number <= since or canonical[number] == inclusion.block_hash:
                if intent_id in self.live:
                    self.live[intent_id].canonical_at = head
            else:
                self._reorged(intent_id, head)

    def _confirm(self, head: int) -> None:
        """Mined, canonical and ``confirmations`` deep: CONFIRMED (or FAILED if it reverted)."""
        ready = [
            lv
            for lv in self.live.values()
            if lv.receipt is not None
            and lv.canonical_at == head
            and lv.receipt.block_number <= head - self.confirmations
        ]
        if not ready:
            return
        done: list[TxIntent] = []
        members: list[TxIntent] = []
        for lv in ready:
            assert lv.receipt is not None
            if lv.receipt.status == 1:
                update = {"state": IntentState.CONFIRMED, "inclusion": lv.receipt, "reason": ""}
                done.append(lv.intent.model_copy(update=update))
                members += [m.model_copy(update=update) for m in self._carried_by(lv.intent)]
                continue
            reason = (
                f"reverted on chain in block {lv.receipt.block_number} "
                f"(tx {lv.receipt.tx_hash}); its nonce {lv.intent.nonce} is used"
            )
            # a carrier's members are held with it until no reorg can undo the revert
            done.append(self._failed(lv.intent, reason, inclusion=lv.receipt))
        self._write([(intent_key(self.chain, i.intent_id), i) for i in done + members])
        for intent in done:
            self.live.pop(intent.intent_id, None)
            self.watch[intent.intent_id] = intent
            self.stats["confirmed" if intent.state is IntentState.CONFIRMED else "failed"] += 1
            if intent.members and intent.state is IntentState.FAILED:
                self.held[intent.intent_id] = intent
            else:
                self.members.pop(intent.intent_id, None)
            self._reply(intent)
        for member in members:
            self.carried.pop(member.intent_id, None)
            self.stats["confirmed"] += 1
            self._reply(member)

    def _carried_by(self, carrier: TxIntent) -> list[TxIntent]:
        return self.members.get(carrier.intent_id, []) if carrier.members else []

    def _resend_and_bump(self, head: int, latest: int) -> None:
        """Not mined yet: bump after K heads (or when the node says underpriced), else re-send."""
        waiting = [
            lv
            for lv in self.live.values()
            if lv.attempts
            and lv.receipt is None
            and lv.top.nonce >= latest
            and lv.suspect_head is None
        ]
        for lv in waiting:
            if lv.signed_head is None:
                lv.signed_head = head
        if latest != self.latest_seen:  # the account's queue moved: no attempt is stuck yet
            self.latest_seen, self.progress_head = latest, head
        due = [
            lv
            for lv in waiting
            if lv.bump_now
            or head - max(lv.signed_head or head, self.progress_head) >= self.bump_after
        ]
        bumped = self._bump(due, head)
        fresh = {id(lv) for lv in bumped}
        resend = [
            lv
            for lv in waiting
            if id(lv) not in fresh
            and (not lv.sent or head - max(lv.last_send_head, self.progress_head) >= RESEND_HEADS)
        ]
        self.stats["resent"] += sum(1 for lv in resend if lv.sent)
        self._send(resend + bumped, head)
        tried = {id(lv) for lv in due}
        again = [lv for lv in waiting if lv.bump_now and id(lv) not in tried]
        if again:
            self._send(self._bump(again, head), head)

    def _bump(self, lives: list[_Live], head: int) -> list[_Live]:
        """Re-sign at the same nonce with both fees raised; persist, then return those bumped.
        While DRAINING the old key is gone: they are counted as stuck and sent as they are."""
        if not lives:
            return []
        if self.phase is Phase.DRAINING:
            for lv in lives:
                lv.bump_now = False
                if not lv.stuck:
                    log.warning(
                        "%s: %s at nonce %d of the old key is not mined and cannot be bumped "
                        "(the old key is gone): sending it as it is",
                        self.name,
                        lv.intent.intent_id,
                        lv.top.nonce,
                    )
                lv.stuck = True
            return []
        quote = self._quote()
        bumped: list[tuple[_Live, TxAttempt]] = []
        for lv in lives:
            lv.bump_now = False
            fees = lv.top.fees.bumped(quote, self.cap, self.bump_pct)
            if fees is None:
                if not lv.stuck:
                    log.warning(
                        "%s: %s at nonce %d is stuck: the fee cap %d wei allows no bump over %s",
                        self.name,
                        lv.intent.intent_id,
                        lv.top.nonce,
                        self.cap,
                        lv.top.fees,
                    )
                lv.stuck = True
                continue
            bumped.append((lv, self._sign(lv.intent, lv.top.seq + 1, fees, lv.top.gas_limit)))
        self._write([(attempt_key(self.chain, a.nonce, a.seq), a) for _, a in bumped])
        for lv, attempt in bumped:
            lv.attempts.append(attempt)
            lv.signed_head, lv.sent, lv.stuck = head, False, False
            self.stats["bumps"] += 1
            log.info(
                "%s: bumped %s at nonce %d to %s",
                self.name,
                lv.intent.intent_id,
                attempt.nonce,
                attempt.fees,
            )
        return [lv for lv, _ in bumped]

    # --- the unhappy paths: reorgs, nonces used elsewhere, rejections ---------------------

    def _reorged(self, intent_id: str, head: int) -> None:
        """Its block left the chain: back to PENDING; the newest attempt goes out again."""
        self.stats["reorgs"] += 1
        live = self.live.get(intent_id)
        if live is not None:
            log.warning("%s: %s left the chain before confirmation", self.name, intent_id)
            live.receipt, live.canonical_at, live.sent, live.signed_head = None, -1, False, head
            return
        done = self.watch.pop(intent_id)
        assert done.inclusion is not None and done.nonce is not None
        back = done.model_copy(
            update={
                "state": IntentState.PENDING,
                "inclusion": None,
                "reason": "",
                "reorgs": done.reorgs + 1,
            }
        )
        detail = {"block": done.inclusion.block_number, "tx": done.inclusion.tx_hash}
        members = self._members_back(back)
        self._write(
            [(intent_key(self.chain, i.intent_id), i) for i in [back, *members]],
            self._audit("tx_reorged", intent_id, detail),
        )
        if back.members:
            self.members[intent_id] = members
            self.carried.update(dict.fromkeys(back.members, intent_id))
            self.held.pop(intent_id, None)
            if done.state is IntentState.CONFIRMED:  # else they were held, PENDING
                self.stats["confirmed"] -= len(members)
        attempts = [
            a
            for _, a in self.store.items(
                "txs", attempts_prefix(self.chain, done.nonce), expect=TxAttempt
            )
            if a.intent_id == intent_id
        ]
        self.stats["confirmed" if done.state is IntentState.CONFIRMED else "failed"] -= 1
        self.live[intent_id] = _Live(back, attempts, signed_head=head)
        log.warning("%s: %s was %s but its block left the chain", self.name, intent_id, done.state)

    def _members_back(self, carrier: TxIntent) -> list[TxIntent]:
        """A carrier whose block left the chain: its members' records, PENDING again (a
        record that does not decode is made again from the carrier)."""
        calls = self._member_calls(carrier) if carrier.members else []
        update = {"state": IntentState.PENDING, "inclusion": None, "reason": ""}
        back: list[TxIntent] = []
        for n, member_id in enumerate(carrier.members):
            record = self.store.get_lenient("txs", intent_key(self.chain, member_id), TxIntent)
            if record is None or record.bundle != carrier.intent_id:
                call = calls[n] if n < len(calls) else b""
                record = self._remade_member(carrier, member_id, call)
            back.append(record.model_copy(update=update))
        return back

    def _nonce_used_elsewhere(self, lv: _Live, head: int) -> None:
        """The chain used this nonce, but none of this intent's attempts. Seen on two heads,
        every other attempt ever stored at that nonce is looked up too (an abandoned one may
        have been mined after all); if none was mined, it is an external use of the key:
        alert, and queue the intent again (it gets a new nonce)."""
        if lv.suspect_head is None or head <= lv.suspect_head:
            lv.suspect_head = head if lv.suspect_head is None else lv.suspect_head
            return
        assert self.nonces is not None
        intent_id, nonce = lv.intent.intent_id, lv.top.nonce
        others = [
            a
            for _, a in self.store.items(
                "txs", attempts_prefix(self.chain, nonce), expect=TxAttempt
            )
            if a.intent_id != intent_id
        ]
        receipts = self._batch([("eth_getTransactionReceipt", [a.tx_hash]) for a in others])
        if any(isinstance(r, Exception) for r in receipts):
            return  # unknown for now; the head is redone
        for attempt, raw in zip(others, receipts, strict=True):
            if not _sent_by(raw, self._account):  # an old key's attempt at the same nonce
                continue
            inclusion = self._inclusion(raw)
            if inclusion is not None:
                self._mined_by_other(lv, attempt, inclusion)
                return
        if lv.intent.filler:  # the hole it was to fill is filled: it has nothing left to do
            again = self._failed(lv.intent, f"nonce {nonce} was used outside the runner")
        else:
            again = lv.intent.model_copy(update={"state": IntentState.QUEUED, "nonce": None})
        counter = self.nonces.model_copy(
            update={"external_nonce_use": self.nonces.external_nonce_use + 1}
        )
        detail = {"nonce": nonce, "attempts": ",".join(a.tx_hash for a in lv.attempts)}
        self._write(
            [(intent_key(self.chain, intent_id), again), (nonce_key(self.chain), counter)],
            self._audit("external_nonce_use", intent_id, detail),
        )
        self.nonces = counter
        if lv.intent.filler:
            del self.live[intent_id]
            if lv.intent.bundle in self.held:  # nor can the carrier it filled for take effect
                self._dissolve_held(self.held[lv.intent.bundle], "its nonce was used elsewhere")
        else:
            self.live[intent_id] = _Live(again)
            self.queue.append(intent_id)
        log.error(
            "%s: ALERT nonce %d was used outside the runner; %s %s",
            self.name,
            nonce,
            intent_id,
            "is dropped (a filler)" if lv.intent.filler else "is queued again for a new nonce",
        )

    def _mined_by_other(self, lv: _Live, attempt: TxAttempt, inclusion: Inclusion) -> None:
        """Another intent's attempt took this nonce (an attempt abandoned as rejected that a
        node mined after all). That intent is done after all; this one goes back to QUEUED (a
        filler has nothing left to do)."""
        other = self.store.get_lenient(
            "txs", intent_key(self.chain, attempt.intent_id), TxIntent
        ) or self.held.get(attempt.intent_id)
        revived = other is not None and other.inclusion is None and other.intent_id not in self.live
        puts: list[tuple[bytes, Any]] = []
        if other is not None and revived:
            state = IntentState.CONFIRMED if inclusion.status == 1 else IntentState.FAILED
            self.stats["failed"] -= other.state is IntentState.FAILED
            other = other.model_copy(update={"state": state, "inclusion": inclusion})
            puts.append((intent_key(self.chain, other.intent_id), other))
            self.stats["failed" if state is IntentState.FAILED else "confirmed"] += 1
        if lv.intent.filler:
            mine = self._failed(lv.intent, f"nonce {attempt.nonce} used by {attempt.tx_hash}")
        else:
            mine = lv.intent.model_copy(update={"state": IntentState.QUEUED, "nonce": None})
        puts.append((intent_key(self.chain, mine.intent_id), mine))
        detail = {"nonce": attempt.nonce, "tx": attempt.tx_hash, "of": attempt.intent_id}
        self._write(puts, self._audit("abandoned_attempt_mined", mine.intent_id, detail))
        del self.live[mine.intent_id]
        if not lv.intent.filler:
            self.live[mine.intent_id] = _Live(mine)
            self.queue.append(mine.intent_id)
        log.error(
            "%s: nonce %d was used by %s of %s, an attempt given up as rejected",
            self.name,
            attempt.nonce,
            attempt.tx_hash,
            attempt.intent_id,
        )
        if other is not None and revived:
            self.watch[other.intent_id] = other
            self._reply(other)
            if other.intent_id in self.held and other.state is IntentState.CONFIRMED:
                self._settle_members(other)  # a carrier given up as rejected: mined after all
            elif other.intent_id in self.held:
                self.held[other.intent_id] = other  # reverted: settled once it is deep

    def _check_external(self, latest: int, pending: int) -> None:
        """The chain is past our counter: someone else used the key. Alert and resync."""
        assert self.nonces is not None
        top = max(latest, pending)
        if top <= self.nonces.next_nonce:
            return
        used = top - self.nonces.next_nonce
        counter = self.nonces.model_copy(
            update={
                "next_nonce": top,
                "external_nonce_use": self.nonces.external_nonce_use + used,
            }
        )
        detail = {"from": self.nonces.next_nonce, "to": top, "latest": latest, "pending": pending}
        self._write(
            [(nonce_key(self.chain), counter)], self._audit("external_nonce_use", "", detail)
        )
        log.error(
            "%s: ALERT the chain is at nonce %d, our counter at %d: %d nonces used outside the "
            "runner; counter resynced",
            self.name,
            top,
            self.nonces.next_nonce,
            used,
        )
        self.nonces = counter

    def _rejected(self, lv: _Live, message: str) -> None:
        """The node refuses an attempt for good. A first attempt is abandoned and its nonce
        FILLED with a zero-value self-transfer, so later nonces are not stuck behind a gap."""
        text = self._redact(message)
        if lv.top.seq > 0 or lv.intent.filler or self.phase is Phase.DRAINING:
            # a filler is signed by the current key: not for a nonce of the old one
            lv.stuck = True
            self.last_error = f"{lv.intent.intent_id}: node rejects attempt {lv.top.seq}: {text}"
            return
        nonce = lv.top.nonce
        failed = self._failed(lv.intent, f"rejected by the node: {text}")
        # a carrier's members are held with it until its filler settles the nonce: a node may
        # still mine the rejected attempt (``_mined_by_other``); then they go alone
        filler = TxIntent(
            intent_id=f"{self.chain}:filler:{nonce}",
            chain=self.chain,
            to=self.address,
            data=b"",
            state=IntentState.PENDING,
            nonce=nonce,
            filler=True,
            created_at=self.clock.now(),
            bundle=failed.intent_id if failed.members else "",
        )
        # seq goes on from the abandoned attempt's: attempt keys are unique per nonce
        attempt = self._sign(filler, lv.top.seq + 1, lv.top.fees, TRANSFER_GAS)
        self._write(
            [
                (intent_key(self.chain, failed.intent_id), failed),
                (intent_key(self.chain, filler.intent_id), filler),
                (attempt_key(self.chain, nonce, attempt.seq), attempt),
            ],
            self._audit("nonce_filled", failed.intent_id, {"nonce": nonce, "reason": text}),
        )
        del self.live[failed.intent_id]
        if failed.members:
            self.held[failed.intent_id] = failed
        self.live[filler.intent_id] = _Live(filler, [attempt])
        self.stats["failed"] += 1
        self.stats["fillers"] += 1
        log.error("%s: %s; nonce %d filled", self.name, failed.reason, nonce)
        self._reply(failed)
        self.actor_ref.tell(Broadcast())

    # --- helpers: signing, pricing, RPC, LMDB, replies, errors ------------------------------

    def _sign(self, intent: TxIntent, seq: int, fees: Fees, gas: int) -> TxAttempt:
        assert intent.nonce is not None
        signed = self.key.sign_transaction(
            Eip1559Tx(
                chain_id=self.chain_id,
                nonce=intent.nonce,
                max_priority_fee_per_gas=fees.max_priority_fee_per_gas,
                max_fee_per_gas=fees.max_fee_per_gas,
                gas=gas,
                to=intent.to,
                value=intent.value,
                data=intent.data,
            )
        )
        return TxAttempt.model_construct(  # every field is ours and typed: no re-validation
            intent_id=intent.intent_id,
            chain=self.chain,
            nonce=intent.nonce,
            seq=seq,
            tx_hash=signed.tx_hash,
            raw=signed.raw,
            fees=fees,
            gas_limit=gas,
            signed_at=self.clock.now(),
        )

    def _flush_fees(self) -> Fees:
        """``_quote`` once a head: the flushes between two blocks price alike."""
        if self.fees_at is not None and self.head_hash and self.fees_at[0] == self.head_hash:
            return self.fees_at[1]
        fees = self._quote()
        self.fees_at = (self.head_hash, fees)
        return fees

    def _quote(self) -> Fees:
        """EIP-1559 fees for the next block: 2 x its base fee + a tip (the median of recent
        blocks' median rewards, else the node's suggestion), never above the cap."""
        history: FeeHistory = self.evm.fee_history(FEE_HISTORY_BLOCKS, "latest", [TIP_PERCENTILE])
        base = history.base_fee_per_gas[-1]
        rewards = sorted(row[0] for row in history.reward if row)
        tip = rewards[len(rewards) // 2] if rewards else 0
        if tip == 0:
            tip = self.evm.max_priority_fee()
        fee = min(2 * base + tip, self.cap)
        return Fees(max_fee_per_gas=fee, max_priority_fee_per_gas=min(tip, fee))

    @property
    def _account(self) -> str:
        """The address whose nonces are in flight: the old key's while DRAINING."""
        return self.nonces.address if self.nonces is not None else self.address

    def _nonce_counts(self, address: str | None = None) -> tuple[int, int]:
        """The latest and pending nonces of ``address`` (default: ``_account``) and, in the
        same batch, its balance."""
        account = address or self._account
        latest, pending, balance = self.evm.batch(
            [
                ("eth_getTransactionCount", [account, "latest"]),
                ("eth_getTransactionCount", [account, "pending"]),
                ("eth_getBalance", [account, "latest"]),
            ]
        )
        try:
            counts = int(latest, 16), int(pending, 16)
            self.balance_wei = int(balance, 16)
        except (TypeError, ValueError) as exc:
            raise TransientError(f"malformed nonce reply: {latest!r:.40}, {pending!r:.40}") from exc
        return counts

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """``evm.batch`` chunk by chunk: a chunk that fails leaves its error in each of its
        places (and marks the step incomplete), so the other chunks' answers still count."""
        out: list[Any] = []
        size = max(1, self.evm.max_batch)
        for start in range(0, len(calls), size):
            chunk = calls[start : start + size]
            try:
                out += self.evm.batch(chunk, return_errors=True)
            except ConfigurationError:
                raise
            except EvmError as exc:
                self._incomplete = exc
                out += [exc] * len(chunk)
        return out

    def _raise_if_incomplete(self) -> None:
        incomplete, self._incomplete = self._incomplete, None
        if incomplete is not None:
            raise incomplete

    @staticmethod
    def _inclusion(raw: Any) -> Inclusion | None:
        try:
            return Inclusion(
                tx_hash=raw["transactionHash"],
                block_number=int(raw["blockNumber"], 16),
                block_hash=raw["blockHash"],
                status=int(raw["status"], 16),
                gas_used=int(raw["gasUsed"], 16),
            )
        except (KeyError, TypeError, ValueError):
            return None

    def _failed(
        self, intent: TxIntent, reason: str, inclusion: Inclusion | None = None
    ) -> TxIntent:
        update = {"state": IntentState.FAILED, "reason": reason, "inclusion": inclusion}
        return intent.model_copy(update=update)

    def _write(self, puts: list[tuple[bytes, Any]], audit: AuditEntry | None = None) -> None:
        """Put every record (and the audit entry) in one durable LMDB transaction."""
        if not puts and audit is None:
            return

        def save(txn: Txn) -> None:
            intents = [(key, r) for key, r in puts if isinstance(r, TxIntent)]
            for key, record in puts:
                if not isinstance(record, TxIntent):
                    txn.put("txs", key, record)
            self.index.put_many(txn, intents)  # the intents, and their counts and live keys
            if audit is not None:
                txn.audit(audit)

        self.store.write(save)

    def _audit(self, action: str, subject: str = "", detail: Any = None) -> AuditEntry:
        if hasattr(detail, "model_dump"):
            detail = detail.model_dump(mode="json")
        shown = {k: self._redact(str(v)) for k, v in (detail or {}).items()}
        return AuditEntry(
            ts=self.clock.now(), actor=self.name, action=action, subject=subject, detail=shown
        )

    def _reply(self, intent: TxIntent) -> None:
        if not intent.reply_to:
            return
        inc = intent.inclusion
        if intent.state is IntentState.CONFIRMED and inc is not None and intent.nonce is not None:
            message: Message = TxConfirmed(
                intent_id=intent.intent_id,
                tx_hash=inc.tx_hash,
                block_number=inc.block_number,
                block_hash=inc.block_hash,
                nonce=intent.nonce,
                status=inc.status,
                gas_used=inc.gas_used,
            )
        else:
            message = TxFailed(intent_id=intent.intent_id, reason=intent.reason, permanent=True)
        self.registry.tell(intent.reply_to, message)

    def _guarded(self, work: Any) -> bool:
        """Run ``work``; an RPC error is noted (a configuration error halts), never raised."""
        try:
            work()
        except ConfigurationError as exc:
            self._halt(exc)
            return False
        except EvmError as exc:
            self._note(exc)
            return False
        return True

    def _halt(self, exc: ConfigurationError) -> None:
        text = self._redact(str(exc))
        if self.halted != text:
            log.error("%s: HALTED, nothing will be sent: %s", self.name, text)
        self.phase, self.halted, self.last_error = Phase.HALTED, text, text

    def _note(self, exc: Exception) -> None:
        self.stats["rpc_errors"] += 1
        self.last_error = self._redact(f"{type(exc).__name__}: {exc}")[:MAX_ERROR_TEXT]
        log.warning("%s: %s", self.name, self.last_error)

    def _redact(self, text: str) -> str:
        return self.key.redact(self.services.redact(text))

    @property
    def _next_nonce(self) -> int | None:
        return self.nonces.next_nonce if self.nonces is not None else None
