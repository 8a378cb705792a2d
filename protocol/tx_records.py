"""What the signer keeps in LMDB (``txs`` database): intents, signed attempts, the nonce counter.

One intent is one on-chain action with a deterministic id; its attempts are the signed
transactions made for it, all at the intent's one nonce (a bump is a new attempt at the same
nonce). Keys are per chain, so one store serves every chain::

    >>> intent = TxIntent(intent_id="dev:0xo:0xm:commit", chain="dev",
    ...                   to="0x" + "11" * 20, data=b"\\x01", created_at=0.0)
    >>> intent_key("dev", intent.intent_id)
    b'dev/i/dev:0xo:0xm:commit'
    >>> attempt_key("dev", nonce=7, seq=1)
    b'dev/a/0000000000000007/0001'
    >>> Fees(max_fee_per_gas=100, max_priority_fee_per_gas=10).bumped(
    ...     Fees(max_fee_per_gas=0, max_priority_fee_per_gas=0), cap=1_000, pct=20)
    Fees(max_fee_per_gas=120, max_priority_fee_per_gas=12)

Attempt keys sort by nonce, so "every attempt for nonce n" is one prefix scan; ``seq`` is unique
per nonce across intents (a filler's attempt goes on from the abandoned one's). The raw signed
bytes are stored before they are broadcast (design invariant 3); they hold no secret.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from protocol.codec import register
from protocol.messages import Hash32
from protocol.spec import Address, Frozen

Wei = Annotated[int, Field(ge=0)]
Nonce = Annotated[int, Field(ge=0)]


class IntentState(StrEnum):
    """Where an intent stands, as stored. (Mined-but-not-deep-enough lives only in memory.)"""

    QUEUED = "queued"
    """Accepted; not yet simulated and signed. Holds no nonce."""
    PENDING = "pending"
    """Signed at ``nonce``; broadcast (or about to be); not yet confirmed."""
    CONFIRMED = "confirmed"
    """Mined with status 1 and ``confirmations`` deep; ``inclusion`` says where."""
    FAILED = "failed"
    """Will not be retried: reverted in simulation (no nonce), reverted on chain (nonce used),
    or rejected by the node for good (its nonce was filled by a filler)."""


class Fees(Frozen):
    """The EIP-1559 fee fields of one attempt, in wei."""

    max_fee_per_gas: Wei
    max_priority_fee_per_gas: Wei

    def bumped(self, quote: Fees, cap: int, pct: int) -> Fees | None:
        """A replacement's fees: both fields at least ``pct`` % (and 1 wei) above these, at least
        the fresh ``quote``, never above ``cap``; ``None`` when the cap leaves no valid bump."""
        fee_floor = max(_raise(self.max_fee_per_gas, pct), quote.max_fee_per_gas)
        tip_floor = max(_raise(self.max_priority_fee_per_gas, pct), quote.max_priority_fee_per_gas)
        fee = min(fee_floor, cap)
        tip = min(tip_floor, fee)
        if fee < _raise(self.max_fee_per_gas, pct) or tip < _raise(
            self.max_priority_fee_per_gas, pct
        ):
            return None
        return Fees(max_fee_per_gas=fee, max_priority_fee_per_gas=tip)


def _raise(value: int, pct: int) -> int:
    """``value`` raised by ``pct`` percent, rounded up, and by at least 1."""
    return max(value + 1, -(-value * (100 + pct) // 100))


class Inclusion(Frozen):
    """Where a transaction of an intent was mined."""

    tx_hash: Hash32
    block_number: Nonce
    block_hash: Hash32
    status: Literal[0, 1]
    gas_used: Wei


class TxIntent(Frozen):
    """One requested on-chain call and its fate. ``filler`` intents are the signer's own
    zero-value self-transfers that fill a nonce no other transaction will use; a carrier (one
    with ``members``) is the signer's own intent whose one transaction makes the calls of many
    (a ``commitBatch``), and its members follow it (``bundle``)."""

    intent_id: str = Field(min_length=1, max_length=256)
    chain: str
    to: Address
    data: bytes
    value: Wei = 0
    reply_to: str = ""
    state: IntentState = IntentState.QUEUED
    nonce: Nonce | None = None
    filler: bool = False
    created_at: float
    reason: str = ""
    """Why it failed, when it did."""
    inclusion: Inclusion | None = None
    reorgs: Annotated[int, Field(ge=0)] = 0
    """How many times a block holding it left the chain."""
    members: tuple[str, ...] = ()
    """A carrier's (a bundle's): the intents whose calls its one transaction makes (ADR 0021).
    Emptied when it is dissolved (its members go on alone)."""
    bundle: str = ""
    """A member's: the carrier whose transaction makes its call; its fate is the carrier's.
    A filler's: the carrier whose nonce it fills (the carrier's members wait for it)."""
    alone: bool = False
    """Never carried again: a carrier of it was dissolved."""


class TxAttempt(Frozen):
    """One signed transaction for an intent: attempt ``seq`` at ``nonce``."""

    intent_id: str
    chain: str
    nonce: Nonce
    seq: Annotated[int, Field(ge=0)]
    tx_hash: Hash32
    raw: bytes
    fees: Fees
    gas_limit: Wei
    signed_at: float


class NonceState(Frozen):
    """The durable nonce counter of one chain's signing address."""

    chain: str
    address: Address
    next_nonce: Nonce
    """The nonce the next new intent gets; every lower nonce belongs to an attempt or was used
    outside the runner."""
    external_nonce_use: Annotated[int, Field(ge=0)] = 0
    """Nonces found used by someone else (the key used outside the runner)."""


# --- keys in the ``txs`` database -----------------------------------------------------------


def intent_key(chain: str, intent_id: str) -> bytes:
    return f"{chain}/i/{intent_id}".encode()


def intents_prefix(chain: str) -> bytes:
    return f"{chain}/i/".encode()


def attempt_key(chain: str, nonce: int, seq: int) -> bytes:
    return f"{chain}/a/{nonce:016x}/{seq:04x}".encode()


def attempts_prefix(chain: str, nonce: int | None = None) -> bytes:
    """All attempts of ``chain``, or only those at ``nonce``."""
    return f"{chain}/a/".encode() if nonce is None else f"{chain}/a/{nonce:016x}/".encode()


def nonce_key(chain: str) -> bytes:
    return f"{chain}/n".encode()


register(TxIntent, kind="tx_intent")
register(TxAttempt, kind="tx_attempt")
register(NonceState, kind="nonce_state")
