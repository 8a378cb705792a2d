"""Resolver: walks one market from DUE to FINALIZED, checkpointing each step before its effect.

    DUE --the operator's override------> OBSERVED         (the override record's hash)
        --a stored proof that verifies--> OBSERVED         (resumed: see below)
        --DataAnswer, proof stored-------> OBSERVED
        (the oracle read first: with no commit there yet, OBSERVED and COMMIT_SENT are one
        checkpoint, see below)
    OBSERVED --oracle already has our hash--> COMMITTED        (adopted)
             --oracle has another hash-----> PARKED           (an operator decides)
             --nothing there---------------> COMMIT_SENT      (SubmitTx "commit")
    COMMIT_SENT --TxConfirmed---------------> COMMITTED        (commitTime: its block's time)
    COMMITTED --chain time >= commitTime + disputeWindow--> FINALIZE_SENT (SubmitTx "finalize")
              (a wait longer than ``yield_after_s``: back to the scheduler until then, and stop)
    FINALIZE_SENT --TxConfirmed-------------> FINALIZED        (tells the scheduler, stops)

Every stage is a ``Resolution`` checkpoint under the actor's name, written in one transaction
with the market's record in ``resolutions`` (and, at OBSERVED, its proof in ``proofs`` and its
pages in ``pages``: ``storage.proofs``). The write goes to the daemon's checkpoint writer
(``writes``: a thread of its own that group-commits the resolvers' checkpoints, ADR 0022), so
no pool worker waits on it; the resolver enters the stage, and acts on it, only once it is
durable, and messages that come meanwhile wait for that. A restarted resolver reloads it and
repeats the effect of its stage, which is safe: data queries are pure, and commit and finalize
are intents with deterministic ids, so the signer answers a repeated one with its known
outcome. OBSERVED's
effect is a read (``pending``), so the resolver reads the oracle as soon as it has its
observation: when no commit is there, the observation and its proof are written with the stage
COMMIT_SENT in one transaction, before the commit is submitted (ADR 0014); a commit already
there, or a failed read, writes OBSERVED and goes on from it as above. That read does not hold
the resolver's pool worker: it goes out with other resolvers' reads on the oracle client's own
thread (``OracleClient.read_pending``), and its answer comes back as a message (ADR 0022); the
query's deadline covers it too. A checkpoint that is missing or does not decode is replaced by
the market's record if that has left DUE; failing both, a data proof still in ``proofs`` is
reused if ``protocol.proof.verify`` recomputes its value and outcome from its own raw responses
(a new query would give a new proof, its fetch times in it, whose hash is not the one we may
have committed: our commit would be parked instead of adopted). A proof that does not verify
is ignored and data is queried again: the runner never commits a value it cannot prove. Which of
these it resumed from is logged (warning).
Failures are reported to the scheduler classified (``ResolutionFailed``), never guessed through.
Args: ``key``, ``scheduler``; ``price_cache`` (name), ``query_timeout_s`` (120), ``resend_s``
(30), ``poll_s`` (2), ``io_retries`` (5), ``yield_after_s`` (30: a longer wait for the dispute
window hands the market back to the scheduler until then, freeing the pool slot), ``override``
(True: look for the operator's override in the job; the scheduler passes False for a job that
has none, since one cannot be set while a resolver works it). Services:
``store``, ``oracles`` (chain -> OracleClient), ``writes`` (a ``sources.batcher.Batcher`` of
write functions over ``Store.write_many``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import pykka
from pydantic import BaseModel

from protocol.evaluation import EvaluationError, evaluate
from protocol.messages import (
    DataAnswer,
    DataFailed,
    DataQuery,
    FailureClass,
    Message,
    ResolutionFailed,
    ResolutionProgress,
    SubmitTx,
    TxConfirmed,
    TxFailed,
    intent_id,
)
from protocol.override import OverrideRecord, record_hash
from protocol.proof import Proof, ProofError, build_proof, canonical_bytes, data_hash_hex, verify
from protocol.records import Job, Resolution, Stage
from protocol.spec import MarketKey, MarketSpec
from sources.batcher import Batcher
from sources.evm import EvmError
from sources.oracle import OracleClient, Pending
from storage import StorageError, Store, StoredValueError, Txn, get_proof, put_proof
from storage.checkpoints import checkpoint_key
from storage.group_commit import WAIT_S
from supervision import SupervisedActor

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
IO_ERRORS = (EvmError, OSError, LookupError, RuntimeError, ValueError)
"""What a stage's IO may raise that is retried (``_guarded``), not a crash."""
Evidence = tuple[bytes, BaseModel]
"""What an observation stores besides its record: the key and proof, or override record."""
WRITE_DEADLINE_S = WAIT_S + 30.0
"""How long a checkpoint's outcome may take before the resolver treats it as lost: past the
group commit's own wait (``storage.group_commit.WAIT_S``)."""
OVERRIDE_SUFFIX = b"#override"
"""Key suffix, in ``proofs``, of the override record committed instead of a data proof."""


class Step(Message):
    """The resolver's own nudge: do what the current stage asks (again)."""

    kind: Literal["resolver_step"] = "resolver_step"
    stage: Stage


class Resolver(SupervisedActor):
    checkpoint_type = Resolution
    pooled = True
    """Resolvers are many and mostly wait for a receipt: they share the runtime's dispatcher
    (ADR 0015). They only ``tell``, so none waits on another."""
    proof_possible = True
    """Whether ``proofs`` may hold this market's proof (False: it never had a record)."""

    # --- start: reload the checkpoint (or the market's record), then act on its stage -----

    def restore(self, state: Any) -> None:
        self.key = MarketKey.parse(self.ctx.args["key"])
        self.store: Store = self.services.extra["store"]
        self.res: Resolution = state if state is not None else self._recorded()

    def _recorded(self) -> Resolution:
        """No readable checkpoint: the market's ``resolutions`` record if it has left DUE (it is
        written with the checkpoint, in one transaction), else a start at DUE. With no record
        at all there is no proof either (the first record is written with it), and ``_observe``
        does not look for one."""
        try:
            record = self.store.get("resolutions", self.key.db_key(), Resolution)
        except StoredValueError as exc:
            self.store.report_bad_value(exc)
            record = None
        else:
            self.proof_possible = record is not None
        if record is None or record.stage is Stage.DUE:
            return Resolution(key=self.key)
        log.warning(
            "%s: no readable checkpoint; resuming at %s from the market's resolution record",
            self.name,
            record.stage.value,
        )
        return record

    def init(self) -> None:
        args = self.ctx.args
        self.oracle: OracleClient = self.services.extra["oracles"][self.key.chain]
        self.scheduler = str(args.get("scheduler", "scheduler"))
        self.price_cache = str(args.get("price_cache", "price_cache"))
        self.signer = f"signer:{self.key.chain}"
        self.query_timeout_s = float(args.get("query_timeout_s", 120.0))
        self.resend_s = float(args.get("resend_s", 30.0))
        self.poll_s = float(args.get("poll_s", 2.0))
        self.io_retries = int(args.get("io_retries", 5))
        self.yield_after_s = float(args.get("yield_after_s", 30.0))
        self.override = bool(args.get("override", True))
        self.io_failures = 0
        self.reads = 0
        self.writes: Batcher[Callable[[Txn], None], None] = self.services.extra["writes"]
        self.writing: tuple[int, Resolution] | None = None
        """A checkpoint given to ``writes`` and not yet durable: its number and record. Until
        it is, other messages wait in ``deferred`` (the stage they are judged by is that one)."""
        self.written = 0
        self.deferred: list[Any] = []
        self.observation: tuple[int, Evidence | None, dict[str, Any]] | None = None
        """An observation made, waiting for the oracle read that decides its checkpoint."""
        self.queries = 0
        self.unreported = self.res.stage is Stage.COMMITTED
        """At COMMITTED and not yet told the scheduler (``_before_finalize`` tells it; a
        restarted resolver tells it again, which the scheduler takes as the same news)."""
        self.stored_spec = self.store.get_lenient("markets", self.key.db_key(), MarketSpec)
        """Needed only to observe (DUE): past it, commit and finalize go on without it."""
        if self.res.stage is Stage.OBSERVED and self._override_changed():
            self.res = self.res.model_copy(update={"stage": Stage.DUE})  # observe it again
        if self.stored_spec is None and self.res.stage is Stage.DUE:
            reason = (
                f"no readable spec stored for {self.key} (listener_recover writes it again "
                "from the factory; then retry)"
            )
            self._fail(FailureClass.PERMANENT, reason)
            return
        self.actor_ref.tell(Step(stage=self.res.stage))

    @property
    def spec(self) -> MarketSpec:
        if self.stored_spec is None:  # a stage past DUE went back to it: retried, reported
            raise LookupError(f"no readable spec stored for {self.key}")
        return self.stored_spec

    def _override_changed(self) -> bool:
        """The operator set an override since this observation was made."""
        job = self.store.get_lenient("jobs", self.key.db_key(), Job)
        return (
            job is not None
            and job.override_outcome is not None
            and self.res.override_reason != job.override_reason
        )

    # --- messages ------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        if self.writing is not None:
            self._while_writing(message)
            return None
        match message:
            case Step(stage=stage) if stage is self.res.stage:
                self._guarded(self._act)
            case Step():
                pass  # a nudge for a stage already left
            case DataAnswer() if self.res.stage is Stage.DUE:
                self._guarded(lambda: self._observed(message))
            case DataFailed(failure=failure, reason=reason) if self.res.stage is Stage.DUE:
                self._fail(failure, f"data: {reason}")
            case _OracleRead():
                self._guarded(lambda: self._oracle_read(message))
            case _QueryTimeout(query_id=query):
                self._timed_out(query)
            case TxConfirmed(intent_id=intent) if intent == self._intent("commit"):
                self._guarded(lambda: self._commit_confirmed(message))
            case TxConfirmed(intent_id=intent) if intent == self._intent("finalize"):
                self._advance(Stage.FINALIZED, finalize_tx=message.tx_hash)
            case TxFailed():
                self._guarded(lambda: self._tx_failed(message))
            case DataAnswer() | DataFailed() | TxConfirmed() | _Written() | _WriteLost():
                pass  # late news of a stage already left
            case _:
                return self.unhandled(message)
        return None

    def snapshot(self) -> Any:
        return self.res.model_dump(mode="json")

    # --- the stage's effect --------------------------------------------------------------

    def _act(self) -> None:
        match self.res.stage:
            case Stage.DUE:
                self._observe()
            case Stage.OBSERVED:
                self._before_commit()
            case Stage.COMMIT_SENT:
                self._submit("commit", self.oracle.commit_call(*self._commit_args()))
            case Stage.COMMITTED:
                self._before_finalize()
            case Stage.FINALIZE_SENT:
                self._submit("finalize", self.oracle.finalize_call(self.key.address))
            case Stage.FINALIZED | Stage.PARKED:
                self._report(self.res)
                self.finish()

    def _observe(self) -> None:
        """DUE: the operator's override, else a proof an earlier incarnation stored (its
        checkpoint and record were lost), else a query for data. (A scheduler that knows its
        job has no override says so, ``override`` False, and the job is not read.)"""
        job = self.store.get_lenient("jobs", self.key.db_key(), Job) if self.override else None
        if job is not None and job.override_outcome is not None:
            self._overridden(job)
        elif self.proof_possible and (reused := self._stored_proof()) is not None:
            proof, data_hash = reused
            log.warning(
                "%s: no checkpoint or record past DUE; resuming at OBSERVED from the stored "
                "proof %s, which verifies",
                self.name,
                data_hash,
            )
            self._observation_made(None, _observation(proof, data_hash))
        else:
            self._query()

    def _overridden(self, job: Job) -> None:
        """An operator decided the outcome: commit it with the hash of the override record."""
        assert job.override_outcome is not None
        record = OverrideRecord(
            spec=self.spec, outcome=job.override_outcome, reason=job.override_reason
        )
        log.warning("%s: committing the operator's override: %s", self.name, record.reason)
        self._observation_made(
            (self.key.db_key() + OVERRIDE_SUFFIX, record),
            {
                "value": "",
                "scaled": None,
                "outcome": record.outcome,
                "data_hash": record_hash(record),
                "override_reason": record.reason,
            },
        )

    def _stored_proof(self) -> tuple[Proof, str] | None:
        """The data proof in ``proofs`` and its hash, if it proves this market's spec: ``verify``
        recomputes its value, scaled value and outcome from its own raw responses. A proof
        that does not is logged and ignored."""
        proof = self._stored(lambda: get_proof(self.store, self.key.db_key()))
        if proof is None:
            return None
        if proof.spec != self.spec:
            problem = "it is the proof of another spec"
        else:
            try:
                report = verify(canonical_bytes(proof))
            except ProofError as exc:
                problem = str(exc)
            else:
                if report.ok:
                    return proof, report.data_hash  # the hash of the very bytes verified
                problem = f"{report.mismatch}: {report.reason}"
        log.warning("%s: the stored proof is not used, querying data again: %s", self.name, problem)
        return None

    def _query(self) -> None:
        self.queries += 1
        query_id = f"{self.name}#{self.queries}"
        self.registry.tell(
            self.price_cache, DataQuery(query_id=query_id, spec=self.spec, reply_to=self.name)
        )
        self.send_later(self.query_timeout_s, self.name, _QueryTimeout(query_id=query_id))

    def _observed(self, answer: DataAnswer) -> None:
        evaluation = answer.evaluation  # the price cache's, of this very spec and these pages
        if evaluation is None:
            try:
                evaluation = evaluate(self.spec, answer.responses)
            except EvaluationError as exc:
                failure = FailureClass.PERMANENT if exc.permanent else FailureClass.TRANSIENT
                self._fail(failure, f"evaluation: {exc}")
                return
        proof = build_proof(self.spec, answer.responses, evaluation)
        self._observation_made(
            (self.key.db_key(), proof), _observation(proof, data_hash_hex(proof))
        )

    def _observation_made(self, evidence: Evidence | None, observation: dict[str, Any]) -> None:
        """Hold an observation (and its new ``evidence``) until the oracle is read; the read
        goes out without holding a pool worker, and its answer comes back as ``_OracleRead``."""
        self.reads += 1
        read = self.reads
        self.observation = (read, evidence, observation)
        actor = self.actor_ref

        def deliver(answer: Pending | Exception) -> None:  # on the oracle's reads thread
            with contextlib.suppress(pykka.ActorDeadError):  # stopped: its successor reads
                actor.tell(_OracleRead.of(read, answer))

        self.oracle.read_pending(self.key.address, deliver)
        if self.queries == 0:  # an override or a stored proof: no query's deadline covers it
            deadline = _QueryTimeout(query_id=f"{self.name}#0")
            self.send_later(self.query_timeout_s, self.name, deadline)

    def _oracle_read(self, answer: _OracleRead) -> None:
        """Checkpoint the held observation: as COMMIT_SENT at once when the oracle holds no
        commit for the market, else as OBSERVED, which reads it again and adopts or parks. A
        failed read is OBSERVED's to retry: the proof is kept either way. The answer for an
        observation no longer held (checkpointed, or dropped by a restart) is ignored."""
        if not self._holds(answer.read):
            return
        assert self.observation is not None
        _, evidence, observation = self.observation
        self.observation = None
        if answer.error:
            log.warning("%s: oracle read after the observation: %s", self.name, answer.error)
        free = not answer.error and answer.committed is False
        self._advance(
            Stage.COMMIT_SENT if free else Stage.OBSERVED, evidence=evidence, **observation
        )

    def _holds(self, read: int) -> bool:
        return (
            self.res.stage is Stage.DUE
            and self.observation is not None
            and self.observation[0] == read
        )

    def _before_commit(self) -> None:
        pending = self.oracle.pending(self.key.address)
        if pending.committed:
            self._adopt_or_park(pending)
            return
        self._advance(Stage.COMMIT_SENT)

    def _adopt_or_park(self, pending: Pending) -> None:
        if pending.data_hash.lower() == self.res.data_hash.lower():
            self._advance(Stage.COMMITTED, commit_time=pending.commit_time, note="adopted")
            return
        reason = (
            f"oracle holds another commit: outcome {pending.outcome}, hash {pending.data_hash}; "
            f"ours: outcome {self.res.outcome}, hash {self.res.data_hash}"
        )
        log.error("%s: %s", self.name, reason)
        self._advance(Stage.PARKED, note=reason)

    def _commit_confirmed(self, confirmed: TxConfirmed) -> None:
        if confirmed.status != 1:
            # The signer reports a reverted receipt as a permanent ``TxFailed``; a status-0
            # confirmation from any other sender is the same news and is handled so.
            reason = f"reverted: {confirmed.tx_hash} (status 0)"
            self._tx_failed(TxFailed(intent_id=confirmed.intent_id, reason=reason, permanent=True))
            return
        # A successful receipt of our own commit call: the oracle stored exactly its
        # arguments (``commit`` stores them or reverts), at its block's timestamp.
        commit_time = self.oracle.block_time(confirmed.block_hash)
        self._advance(Stage.COMMITTED, commit_tx=confirmed.tx_hash, commit_time=commit_time)

    def _before_finalize(self) -> None:
        ready_at = self.res.commit_time + self.oracle.dispute_window()
        left = ready_at - self.oracle.chain_time()
        if left > self.yield_after_s:
            # a long dispute window: give the pool slot back; the scheduler resumes the market
            self._report(self.res, resume_at=self.clock.now() + left)
            self.finish()
            return
        if self.unreported:
            self._report(self.res)
        if left > 0:
            self.send_later(min(self.poll_s, left), self.name, Step(stage=Stage.COMMITTED))
        else:
            self._advance(Stage.FINALIZE_SENT)

    def _tx_failed(self, failed: TxFailed) -> None:
        stage = self.res.stage
        if stage not in (Stage.COMMIT_SENT, Stage.FINALIZE_SENT):
            return
        if not failed.permanent:
            self.send_later(self.resend_s, self.name, Step(stage=stage))
            return
        pending = self.oracle.pending(self.key.address)
        if stage is Stage.COMMIT_SENT and pending.committed:
            self._adopt_or_park(pending)
        elif stage is Stage.FINALIZE_SENT and pending.finalized:
            self._advance(Stage.FINALIZED, note="finalized by someone else")
        elif stage is Stage.FINALIZE_SENT and "DisputeWindowOpen" in failed.reason:
            self._advance(Stage.COMMITTED)
        else:
            failure = (
                FailureClass.CONFIGURATION
                if "NotResolver" in failed.reason
                else FailureClass.PERMANENT
            )
            self._fail(failure, f"{stage.value}: {failed.reason}")

    # --- transitions ---------------------------------------------------------------------

    def _advance(self, stage: Stage, *, evidence: Evidence | None = None, **changes: Any) -> None:
        """Checkpoint the new stage with the resolution record (and an observation's new
        ``evidence``: its key and proof or override record), then act on it."""
        updated = self.res.model_copy(update={"stage": stage, **changes})

        def save(txn: Txn) -> None:
            if evidence is not None:
                key, record = evidence
                if isinstance(record, Proof):
                    put_proof(txn, key, record)  # its pages once, in ``pages`` (ADR 0018)
                else:
                    txn.put("proofs", key, record)
            txn.put("resolutions", self.key.db_key(), updated)
            txn.put("checkpoints", checkpoint_key(self.name), updated)

        number, actor = self.written + 1, self.actor_ref

        def deliver(outcome: Exception | None) -> None:  # on the writes' thread
            with contextlib.suppress(pykka.ActorDeadError):  # stopped: its successor reloads
                actor.tell(_Written.of(number, outcome))

        self.writes.submit(save, deliver)  # (raises when closed: nothing is then in flight)
        self.written = number
        self.writing = (number, updated)
        # the writes thread answers every write, but a message can still be lost (a fault
        # plan drops it): past the deadline the resolver crashes and reloads what is durable
        self.send_later(WRITE_DEADLINE_S, self.name, _WriteLost(write=number))

    def _while_writing(self, message: Any) -> None:
        """A checkpoint is on its way: its outcome is handled, anything else waits for it."""
        assert self.writing is not None
        if isinstance(message, _WriteLost) and message.write == self.writing[0]:
            raise StorageError(
                f"{self.name}: no outcome of checkpoint {message.write} "
                f"({self.writing[1].stage.value}) within {WRITE_DEADLINE_S:g} s"
            )
        if not isinstance(message, _Written):
            self.deferred.append(message)
            return
        self._guarded(lambda: self._checkpointed(message))
        if self.writing is None:
            self._replay()

    def _checkpointed(self, written: _Written) -> None:
        """The checkpoint is durable (or failed: raised here, as a write of one's own would):
        enter its stage, then handle what came meanwhile."""
        assert self.writing is not None
        number, updated = self.writing
        if written.write != number:
            return
        self.writing = None
        if written.error is not None:
            raise written.error
        self._entered(updated)

    def _replay(self) -> None:
        deferred, self.deferred = self.deferred, []
        for message in deferred:
            self.handle(message)  # deferred again if it starts another write

    def _entered(self, updated: Resolution) -> None:
        self.res = updated
        self.io_failures = 0
        if updated.stage is Stage.COMMITTED:
            self.unreported = True  # reported by ``_before_finalize``, with the wait it chose
        elif updated.stage not in (Stage.FINALIZED, Stage.PARKED):
            self._report(updated)
        self._act()

    def _report(self, res: Resolution, **extra: Any) -> None:
        self.unreported = False
        detail: dict[str, Any] = {"value": res.value, "outcome": res.outcome, "note": res.note}
        if res.stage is Stage.PARKED:
            detail["reason"] = res.note
        if res.stage is Stage.COMMITTED and res.commit_time:
            detail["commit_time"] = res.commit_time
            detail["dispute_ends_at"] = res.commit_time + self.oracle.dispute_window()
        detail.update(extra)
        self.registry.tell(
            self.scheduler, ResolutionProgress(key=self.key, state=res.stage.value, detail=detail)
        )

    def _submit(self, action: str, data: bytes) -> None:
        self.registry.tell(
            self.signer,
            SubmitTx(
                intent_id=self._intent(action),
                chain=self.key.chain,
                to=self.oracle.address,
                data=data,
                reply_to=self.name,
            ),
        )
        # the signer keeps intents durably; asking again later is harmless and covers a lost reply
        self.send_later(self.resend_s, self.name, Step(stage=self.res.stage))

    def _intent(self, action: str) -> str:
        return intent_id(self.key.chain, self.oracle.address, self.key.address, action)

    def _commit_args(self) -> tuple[str, int, bytes]:
        assert self.res.outcome is not None
        return self.key.address, self.res.outcome, bytes.fromhex(self.res.data_hash[2:])

    def _guarded(self, work: Any) -> None:
        """Run ``work``; an IO error is retried a few times, then reported as transient."""
        try:
            work()
        except IO_ERRORS as exc:
            self.io_failures += 1
            log.warning("%s: %s (%d/%d)", self.name, exc, self.io_failures, self.io_retries)
            if self.io_failures > self.io_retries:
                self._fail(FailureClass.TRANSIENT, f"{self.res.stage.value}: {exc}")
                return
            self.send_later(self.poll_s * self.io_failures, self.name, Step(stage=self.res.stage))

    def _fail(self, failure: FailureClass, reason: str) -> None:
        if self.unreported:
            self._report(self.res)  # the commit is news even if what followed failed
        self.registry.tell(
            self.scheduler, ResolutionFailed(key=self.key, failure=failure, reason=reason)
        )
        self.finish()

    def _timed_out(self, query_id: str) -> None:
        """The query's deadline: no data is a transient failure; data that came with no oracle
        read after it is checkpointed OBSERVED, whose stage reads again. Late for a query
        answered and checkpointed, or not the latest: nothing."""
        if self.res.stage is not Stage.DUE or query_id != f"{self.name}#{self.queries}":
            return
        if self.observation is None:
            self._fail(FailureClass.TRANSIENT, f"no data within {self.query_timeout_s:g}s")
            return
        late = f"no answer from the oracle within {self.query_timeout_s:g}s"
        read = _OracleRead(read=self.observation[0], error=late)
        self._guarded(lambda: self._oracle_read(read))

    def _stored(self, read: Callable[[], M | None]) -> M | None:
        """``read`` from the store, with a value that does not decode counted in the store's
        ``bad_values``, reported, and answered ``None``."""
        try:
            return read()
        except StoredValueError as exc:
            self.store.report_bad_value(exc)
            return None


def _observation(proof: Proof, data_hash: str) -> dict[str, Any]:
    """The fields of an OBSERVED resolution that ``proof``, whose hash is ``data_hash``, gives."""
    return {
        "value": proof.value,
        "scaled": proof.scaled,
        "outcome": proof.outcome,
        "data_hash": data_hash,
    }


class _QueryTimeout(Message):
    kind: Literal["resolver_query_timeout"] = "resolver_query_timeout"
    query_id: str


class _Written:
    """The outcome of the checkpoint ``write``, from the writes' thread (an ``Exception`` in
    a message of the actor's own: not a protocol message)."""

    __slots__ = ("error", "write")
    kind = "resolver_written"

    def __init__(self, write: int, error: Exception | None) -> None:
        self.write = write
        self.error = error

    @classmethod
    def of(cls, write: int, outcome: Exception | None) -> _Written:
        return cls(write, outcome if isinstance(outcome, Exception) else None)


class _WriteLost(Message):
    kind: Literal["resolver_write_lost"] = "resolver_write_lost"
    write: int


class _OracleRead(Message):
    """The oracle's ``pending(market)`` read for the observation held under ``read``."""

    kind: Literal["resolver_oracle_read"] = "resolver_oracle_read"
    read: int
    committed: bool | None = None
    """Whether the oracle holds a commit for the market; None when the read failed."""
    error: str = ""

    @classmethod
    def of(cls, read: int, answer: Pending | Exception) -> _OracleRead:
        if isinstance(answer, Exception):
            return cls(read=read, error=f"{type(answer).__name__}: {answer}"[:300] or "failed")
        return cls(read=read, committed=answer.committed)
