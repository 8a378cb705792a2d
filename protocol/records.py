"""Stored record types: what the runner keeps in LMDB besides actor checkpoints.

Each is registered with the process-wide codec under a stable kind and version; a change of
shape bumps the version and registers an upgrader from the old one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from protocol.codec import register
from protocol.messages import FailureClass
from protocol.spec import Frozen, MarketKey, MarketSpec
from protocol.supervision import ChildSpec, FaultRule, SupervisorSpec


class AuditEntry(Frozen):
    """One audited act: who did what to which subject, and when (runtime clock, seconds)."""

    ts: float
    actor: str
    action: str
    subject: str = ""
    detail: dict[str, str] = Field(default_factory=dict)


class Cursor(Frozen):
    """How far a chain has been scanned: the last block handed off, by number and hash, and
    the hashes of the blocks scanned before it (to find the fork point after a reorg)."""

    chain: str
    block_number: Annotated[int, Field(ge=-1)]
    block_hash: str
    recent: tuple[tuple[int, str], ...] = ()


class JobState(StrEnum):
    """Where a market stands in the scheduler."""

    WAITING = "waiting"
    """Known, not yet due or backing off; ``next_attempt_at`` says when."""
    RUNNING = "running"
    """A resolver works it."""
    PAUSED = "paused"
    """An operator paused it; nothing happens until unpaused."""
    PARKED = "parked"
    """Needs an operator: someone else's commit, or a chain halted for its configuration."""
    DEAD = "dead"
    """In the dead-letter queue with its reason; an operator may retry it."""
    CANCELLED = "cancelled"
    """An operator cancelled it; the runner will not resolve it."""
    FINALIZED = "finalized"
    """Done: committed and finalized on chain."""


class Job(Frozen):
    """The scheduler's durable record of one market."""

    key: MarketKey
    state: JobState = JobState.WAITING
    due_at: float
    """``t_end`` + settle delay, in seconds."""
    next_attempt_at: float
    attempts: Annotated[int, Field(ge=0)] = 0
    first_attempt_at: float | None = None
    """When the first attempt started: the retry budget's age counts from here."""
    stage: str = "DUE"
    """The resolver's last reported state."""
    last_error: str = ""
    failure: FailureClass | None = None
    override_outcome: Literal[0, 1] | None = None
    override_reason: str = ""


class Stage(StrEnum):
    """A resolver's states (DESIGN.md section 4.3); each is checkpointed before its effect."""

    DUE = "DUE"
    OBSERVED = "OBSERVED"
    """Value, outcome and proof are stored."""
    COMMIT_SENT = "COMMIT_SENT"
    COMMITTED = "COMMITTED"
    FINALIZE_SENT = "FINALIZE_SENT"
    FINALIZED = "FINALIZED"
    PARKED = "PARKED"
    """Someone else's commit is on chain: an operator decides."""


class Resolution(Frozen):
    """A market's resolution as the runner worked it; also the resolver's checkpoint."""

    key: MarketKey
    stage: Stage = Stage.DUE
    value: str = ""
    """The measured value, as a decimal string."""
    scaled: int | None = None
    outcome: Literal[0, 1] | None = None
    data_hash: str = ""
    override_reason: str = ""
    commit_tx: str = ""
    commit_time: Annotated[int, Field(ge=0)] = 0
    finalize_tx: str = ""
    note: str = ""


class SchemaVersion(Frozen):
    """The layout version of an LMDB environment, kept in ``meta``."""

    version: Annotated[int, Field(ge=0)]


class StateCounts(Frozen):
    """How many records of one family (jobs; one chain's intents) are in each state, kept in
    ``index`` in the same transaction as the records (``storage.indexes``)."""

    counts: dict[str, int] = {}


class WeightLedger(Frozen):
    """The weight a Hyperliquid source was charged in the last minute, per whole second (the
    second rounded up), kept in ``meta`` so that a restarted runner still keeps to the limit."""

    url: str
    spent: tuple[tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(gt=0)]], ...] = ()
    """``(epoch second, weight)``, oldest first."""


class HaltedChains(Frozen):
    """Chains on which the scheduler starts no market since a configuration failure (a key the
    oracle does not accept), with that failure; kept in ``meta`` so a restart keeps the halt.
    A retry of a market on the chain lifts it."""

    reasons: dict[str, str] = {}
    """Chain name -> the failure that halted it."""


HALTED_CHAINS_KEY = b"scheduler.halted_chains"
"""Key of the ``HaltedChains`` record in ``meta``."""


register(AuditEntry, kind="audit_entry")
register(Cursor, kind="cursor")
register(Job, kind="job")
register(Resolution, kind="resolution")
register(SchemaVersion, kind="schema_version")
register(WeightLedger, kind="weight_ledger")
register(HaltedChains, kind="halted_chains")
register(StateCounts, kind="state_counts")
register(MarketSpec, kind="market_spec")
register(ChildSpec, kind="child_spec")
register(SupervisorSpec, kind="supervisor_spec")
register(FaultRule, kind="fault_rule")
