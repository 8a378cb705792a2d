"""Scheduler: one durable job per market; starts resolvers when jobs fall due.

States of a job (``protocol.records.JobState``)::

    discovered -> WAITING --due, pool has room--> RUNNING --FINALIZED--> FINALIZED
                     ^                               |
                     |  committed, long dispute      |
                     |  window: resume at its end    |
                     |  transient, budget left       |-- transient, budget spent -> DEAD
                     `-------------------------------|-- permanent -------------> DEAD
                                                     |-- configuration ---------> PARKED (+halt)
                                                     `-- someone else's commit -> PARKED
    operators: retry (DEAD/PARKED -> WAITING), cancel, resolve_now, pause/unpause, override

The jobs live in LMDB (``jobs``; the spec in ``markets``); memory holds only the heap of waiting
jobs and the set of running ones, rebuilt from LMDB on every start from the job index
(``storage.indexes.JOBS``: the keys of live jobs and the counts by state), so a start reads
the live jobs, not every market ever resolved. ``MarketDiscovered`` is
answered with ``Ack`` only after the job is durable, so the listener may advance its cursor.

Reports from resolvers arrive in bursts (thousands of markets commit within seconds); each moves
a job, and writing each move durably on its own would hold the scheduler at one fsync per
message. Moves made while handling a burst are kept in ``unsaved`` (which ``_job`` reads first)
and written in one transaction by a ``_Flush`` the scheduler tells itself, so it is handled
after the messages already queued. Losing them in a crash loses nothing: the resolver's
checkpoint is the durable record of a market's progress, and a job still RUNNING in LMDB is
resumed from it. Dispatch rounds and operator commands are written before they take effect.
A freed resolver slot or a new market asks for a dispatch round at once (``_Dispatch``), not
at the next tick.
Args: ``settle_delay_s`` (60), ``tick_s`` (1), ``retry_base_s`` (5), ``retry_cap_s`` (300),
``max_attempts`` (8), ``max_age_s`` (86400), ``resolvers`` (the supervisor's name),
``resolver_args`` (added to every resolver's args, e.g. ``query_timeout_s``).
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import Counter, OrderedDict
from typing import Any, Literal

from protocol.codec import CODEC
from protocol.messages import (
    Ack,
    ChildrenStarted,
    CommandResult,
    FailureClass,
    MarketDiscovered,
    MarketsDiscovered,
    Message,
    OperatorAction,
    OperatorCommand,
    ResolutionFailed,
    ResolutionProgress,
    StartChildren,
    StopChild,
    Tick,
)
from protocol.records import HALTED_CHAINS_KEY, AuditEntry, HaltedChains, Job, JobState
from protocol.spec import MarketKey, MarketSpec
from protocol.supervision import ChildSpec, RestartType
from storage import Store, StoredValueError, Txn
from storage.indexes import JOBS
from supervision import SupervisedActor

log = logging.getLogger(__name__)

FINAL_STAGE = "FINALIZED"
COMMITTED_STAGE = "COMMITTED"
LATENCY_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
"""Upper bounds (seconds) of the due-to-commit latency histogram (``ops.metrics``)."""
PARKED_STAGE = "PARKED"
START_BATCH = 64
"""Resolvers started per ``StartChildren`` round trip to the resolvers' supervisor."""
START_TIMEOUT_S = 10.0
JOB_CACHE = 16_384
"""Jobs the scheduler keeps decoded in memory (about 2 KB each: some 34 MB when full)."""


def resolver_name(key: MarketKey | str) -> str:
    """The resolver's registered name, from a key or its text (``str(key)``: no parsing)."""
    return f"resolver:{key}"


class _Flush(Message):
    """The scheduler's own nudge: write the job moves of the burst just handled."""

    kind: Literal["scheduler_flush"] = "scheduler_flush"


class _Dispatch(Message):
    """The scheduler's own nudge: start resolvers for due jobs while the pool has room."""

    kind: Literal["scheduler_dispatch"] = "scheduler_dispatch"


class Scheduler(SupervisedActor):
    # --- start: rebuild the heap from LMDB -----------------------------------------------

    def init(self) -> None:
        args = self.ctx.args
        self.store: Store = self.services.extra["store"]
        self.settle_delay_s = float(args.get("settle_delay_s", 60.0))
        self.tick_s = float(args.get("tick_s", 1.0))
        self.retry_base_s = float(args.get("retry_base_s", 5.0))
        self.retry_cap_s = float(args.get("retry_cap_s", 300.0))
        self.max_attempts = int(args.get("max_attempts", 8))
        self.max_age_s = float(args.get("max_age_s", 86_400.0))
        self.resolvers = str(args.get("resolvers", "resolvers"))
        self.resolver_args: dict[str, Any] = dict(args.get("resolver_args") or {})
        """Extra args of every resolver started (the daemon's ``query_timeout_s``)."""
        self.random = random.Random(args.get("seed"))
        self.halted: dict[str, str] = {}
        """Chains that start no market, with the configuration failure that halted them (kept
        in ``meta``: a restart keeps the halt; a retry of a market on the chain lifts it)."""
        self.heap: list[tuple[float, float, str]] = []
        self.running: set[str] = set()
        self.missing: set[str] = set()
        """Running markets whose resolver was not found on the last reconcile pass."""
        self.counts: dict[str, int] = {}
        self.due: dict[str, float] = {}
        """Due time of every waiting or running job, for ``oldest_overdue_s``."""
        self.stages: dict[str, str] = {}
        """The last stage each running market's resolver reported (not persisted here)."""
        self.disputes: dict[str, float] = {}
        """Committed, not yet finalized markets -> when their dispute window ends (chain s)."""
        self.latency = [0] * len(LATENCY_BUCKETS)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.unsaved: dict[str, Job] = {}
        """Job moves not yet written (see the module docstring), by market key."""
        self.cached: OrderedDict[str, Job] = OrderedDict()
        """The latest jobs written (or read), most recent last: the scheduler is the only writer
        of ``jobs``, so these equal LMDB's; a read here is no LMDB read (see ``_job``)."""
        self.unsaved_audit: list[AuditEntry] = []
        self.flush_pending = False
        self.dispatch_pending = False
        self._load()
        heapq.heapify(self.heap)
        halted = self.store.get_lenient("meta", HALTED_CHAINS_KEY, HaltedChains)
        self.halted = dict(halted.reasons) if halted is not None else {}
        if self.halted and not self.counts.get(JobState.PARKED.value):
            # the parked markets that halted them were cancelled (or the chain's are gone)
            for chain in list(self.halted):
                self._lift(chain)
        for chain, reason in self.halted.items():
            log.error(
                "chain %s stays halted (a retry of one of its markets lifts it): %s", chain, reason
            )
        self.send_later(self.tick_s, self.name, Tick(now=0))

    def _load(self) -> None:
        """The live jobs (WAITING, RUNNING) from ``index`` and the counts of all; an index that
        is missing or does not add up to the jobs stored is built again from a full scan."""
        counts = JOBS.counts(self.store) or {}
        stored = self.store.count("jobs")
        if sum(counts.values()) != stored:
            log.error(
                "%s: the job index counts %d jobs, the store holds %d; rebuilding it",
                self.name,
                sum(counts.values()),
                stored,
            )
            self.store.write(JOBS.rebuild)
            counts = JOBS.counts(self.store) or {}
        self.counts = dict(counts)
        for key, buf in JOBS.live_records(self.store):
            entry = self._heap_entry(key, buf)
            if entry is None:
                continue
            state, item = entry
            if state in (JobState.WAITING, JobState.RUNNING):
                # a job that was running when the daemon stopped resumes from its checkpoint
                self.heap.append(item)
                self.due[item[2]] = item[1]

    def _heap_entry(
        self, key: bytes, buf: bytes
    ) -> tuple[JobState, tuple[float, float, str]] | None:
        """A job's state and heap item from its envelope, without validating the whole model
        (100,000 jobs load in a fraction of the time); anything unexpected takes the full
        decode, which reports a bad value with its database and key."""
        data = CODEC.peek(buf, Job)
        try:
            if data is None:
                raise ValueError("not a current job envelope")
            item = (float(data["next_attempt_at"]), float(data["due_at"]), key.decode())
            return JobState(data["state"]), item
        except (KeyError, TypeError, ValueError):
            job = self.store.decode("jobs", key, buf, Job)
            if job is None:
                return None
            return job.state, (job.next_attempt_at, job.due_at, str(job.key))

    def terminate(self) -> None:
        try:
            self._flush()  # a clean stop leaves every move written
        except Exception as exc:  # the store may be closing: the checkpoints still hold
            log.warning("%s: job moves not written at stop: %s", self.name, exc)

    # --- messages ------------------------------------------------------------------------

    def handle(self, message: Any) -> Any:
        match message:
            case MarketDiscovered():
                return self._discovered((message,))
            case MarketsDiscovered(markets=markets):
                return self._discovered(markets)
            case _Flush():
                self.flush_pending = False
                self._flush()
                return None
            case _Dispatch():
                self.dispatch_pending = False
                self._dispatch()
                return None
            case Tick():
                self._dispatch()
                self._reconcile()
                self.send_later(self.tick_s, self.name, Tick(now=self.clock.now()))
                return None
            case ResolutionProgress(key=key, state=state):
                self._progress(key, state, message.detail)
                return None
            case ResolutionFailed(key=key, failure=failure, reason=reason):
                self._failed(key, failure, reason)
                return None
            case OperatorCommand():
                result = self._operator(message)
                self._flush()  # an operator's act is durable before it is answered
                return result
        return self.unhandled(message)

    def snapshot(self) -> Any:
        now = self.clock.now()
        oldest = min(self.due.values(), default=now)
        return {
            "jobs": dict(self.counts),
            "waiting_heap": len(self.heap),
            "running": sorted(self.running),
            "stages": dict(Counter(self.stages[k] for k in self.running if k in self.stages)),
            "halted_chains": sorted(self.halted),
            "halt_reasons": dict(self.halted),
            "oldest_overdue_s": max(0.0, now - oldest),
            "commit_latency": {
                "buckets": [list(pair) for pair in zip(LATENCY_BUCKETS, self.latency, strict=True)],
                "sum": self.latency_sum,
                "count": self.latency_count,
            },
            "dispute_left_s": [ends - now for ends in self.disputes.values()],
        }

    # --- discovery: dedup by market key, durable before the Ack --------------------------

    def _discovered(self, batch: tuple[MarketDiscovered, ...]) -> Ack:
        """Store every new market of ``batch`` and its job in one durable transaction."""
        due_of = {found.key: found.spec.window.t_end + self.settle_delay_s for found in batch}

        replaced: list[str] = []
        """The index's state of each unreadable job written over (its count moves with it)."""

        def add(txn: Txn) -> list[Job]:
            added: dict[MarketKey, Job] = {}
            replaced.clear()  # the write may be run again
            for found in batch:
                key = found.key
                if key in added:
                    continue
                try:
                    if txn.get("jobs", key.db_key(), Job) is not None:
                        self._mend_spec(txn, found)
                        continue
                except StoredValueError as exc:  # written over: its resolver's checkpoint
                    self.store.report_bad_value(exc)  # still holds the market's progress
                    replaced.append(JOBS.stored_state(txn, key.db_key()))
                job = Job(key=key, due_at=due_of[key], next_attempt_at=due_of[key])
                txn.put("markets", key.db_key(), found.spec)
                txn.audit(
                    self._audit("discovered", key, via=found.via, block=str(found.block_number))
                )
                added[key] = job
            # the index's counts read and written once for the batch, not once a market
            JOBS.put_many(txn, [(key.db_key(), job) for key, job in added.items()])
            return list(added.values())

        added = self.store.write(add)
        for state in replaced:
            self.counts[state] = self.counts.get(state, 0) - 1
        self._remember(added)
        for job in added:
            self._count(JobState.WAITING, +1)
            self.due[str(job.key)] = job.due_at
            heapq.heappush(self.heap, (job.next_attempt_at, job.due_at, str(job.key)))
        if added:
            self._kick()
        if len(batch) == 1:
            return Ack(detail="new" if added else "known")
        return Ack(detail=f"{len(added)} new")

    # --- dispatch: due jobs start resolvers while the pool has room ----------------------

    def _dispatch(self) -> None:
        now = self.clock.now()
        deferred: list[tuple[float, float, str]] = []
        started: list[tuple[Job, dict[str, Any]]] = []
        full = False
        while not full and self.heap and self.heap[0][0] <= now:
            batch = self._due_batch(now, deferred)
            if not batch:
                break
            answer: ChildrenStarted = self.registry.ask(
                self.resolvers,
                StartChildren(specs=tuple(self._resolver_spec(job) for _, job in batch)),
                timeout=START_TIMEOUT_S,
            )
            for (item, job), result in zip(batch, answer.results, strict=True):
                if result.reason == "full":
                    deferred.append(item)  # backpressure: the rest wait, in due order
                    full = True
                    continue
                self.running.add(item[2])
                self.missing.discard(item[2])  # a mark from an earlier resolver is not this one's
                if job.state is not JobState.RUNNING:
                    resuming = job.stage == COMMITTED_STAGE  # not a new attempt: the wait is over
                    attempts = job.attempts if resuming else job.attempts + 1
                    change: dict[str, Any] = {"state": JobState.RUNNING, "attempts": attempts}
                    if job.first_attempt_at is None:
                        change["first_attempt_at"] = now
                    started.append((job, change))
        if started:
            self._save_all(started, durable=True)  # one transaction for the whole round
        for item in deferred:
            heapq.heappush(self.heap, item)

    def _due_batch(
        self, now: float, deferred: list[tuple[float, float, str]]
    ) -> list[tuple[tuple[float, float, str], Job]]:
        """Up to ``START_BATCH`` due jobs to start, popped from the heap in due order."""
        batch: list[tuple[tuple[float, float, str], Job]] = []
        taken: set[str] = set()
        while self.heap and self.heap[0][0] <= now and len(batch) < START_BATCH:
            item = heapq.heappop(self.heap)
            if item[2] in self.running or item[2] in taken:
                continue  # a duplicate entry of a market already being worked
            key = MarketKey.parse(item[2])
            job = self._job(key)
            if job is None or job.state not in (JobState.WAITING, JobState.RUNNING):
                continue
            if key.chain in self.halted:
                deferred.append(item)
                continue
            taken.add(item[2])
            batch.append((item, job))
        return batch

    def _kick(self) -> None:
        """Ask for a dispatch round after the messages already queued."""
        if not self.dispatch_pending:
            self.dispatch_pending = True
            self.actor_ref.tell(_Dispatch())

    def _resolver_spec(self, job: Job) -> ChildSpec:
        args = {**self.resolver_args, "key": str(job.key), "scheduler": self.name}
        if job.override_outcome is None:
            # an override can be set only while no resolver works the job: this one's
            # resolvers (restarts included) need not look for one
            args["override"] = False
        return ChildSpec(
            id=resolver_name(job.key), actor="resolver", restart=RestartType.TRANSIENT, args=args
        )

    def _reconcile(self) -> None:
        """Running jobs whose resolver is gone for good (its supervisor restarted, or gave up
        on it) fail as transient: they are retried with backoff within the retry budget, so a
        resolver that can never run ends in the dead-letter queue instead of being restarted
        for ever.

        A resolver that stopped normally has told its last report before stopping, but that
        report may still be queued behind this tick: a market counts as lost only when its
        resolver is missing on two passes in a row.
        """
        for text in list(self.running):
            entry = self.registry.entry(resolver_name(text))
            if entry is not None and entry.status.value != "gone":
                self.missing.discard(text)
                continue
            if text not in self.missing:
                self.missing.add(text)
                continue
            self.missing.discard(text)
            self._failed(
                MarketKey.parse(text),
                FailureClass.TRANSIENT,
                "its resolver stopped without a report (it crashed, or its supervisor did)",
            )

    # --- reports from resolvers ----------------------------------------------------------

    def _progress(self, key: MarketKey, stage: str, detail: dict[str, Any]) -> None:
        job = self._job(key)
        if job is None or job.state in (JobState.FINALIZED, JobState.CANCELLED):
            return
        self.stages.pop(str(key), None)
        if stage == COMMITTED_STAGE:
            self._committed(job, detail)
        if stage in (FINAL_STAGE, PARKED_STAGE) or "resume_at" in detail:
            self._kick()  # a pool slot is free
        if "resume_at" in detail:
            # committed, waiting out the dispute window without holding a resolver
            self.running.discard(str(key))
            resume_at = float(detail["resume_at"])
            self._save(job, state=JobState.WAITING, stage=stage, next_attempt_at=resume_at)
            heapq.heappush(self.heap, (resume_at, job.due_at, str(key)))
        elif stage == FINAL_STAGE:
            self.running.discard(str(key))
            self._save(job, state=JobState.FINALIZED, stage=stage, last_error="")
        elif stage == PARKED_STAGE:
            self.running.discard(str(key))
            reason = str(detail.get("reason", "parked by its resolver"))
            self._save(job, state=JobState.PARKED, stage=stage, last_error=reason)
        else:
            self.stages[str(key)] = stage  # the resolver's checkpoint is the durable record

    def _committed(self, job: Job, detail: dict[str, Any]) -> None:
        """Observe the due-to-commit latency once; remember when the dispute window ends."""
        key = str(job.key)
        now = self.clock.now()
        if key not in self.disputes:
            latency = float(detail.get("commit_time") or now) - job.due_at
            for index, bound in enumerate(LATENCY_BUCKETS):
                if latency <= bound:
                    self.latency[index] += 1
            self.latency_sum += latency
            self.latency_count += 1
        self.disputes[key] = float(detail.get("dispute_ends_at") or now)

    def _failed(self, key: MarketKey, failure: FailureClass, reason: str) -> None:
        self.running.discard(str(key))
        self._kick()
        job = self._job(key)
        if job is None or job.state is not JobState.RUNNING:
            return
        now = self.clock.now()
        match failure:
            case FailureClass.TRANSIENT:
                since = job.first_attempt_at if job.first_attempt_at is not None else job.due_at
                if job.attempts >= self.max_attempts or now - since > self.max_age_s:
                    spent = f"retry budget spent after {job.attempts} attempts: {reason}"
                    self._save(job, state=JobState.DEAD, failure=failure, last_error=spent)
                    return
                ceiling = backoff_ceiling(self.retry_base_s, self.retry_cap_s, job.attempts)
                next_at = now + self.random.uniform(0, ceiling)  # full jitter
                self._save(
                    job,
                    state=JobState.WAITING,
                    failure=failure,
                    last_error=reason,
                    next_attempt_at=next_at,
                )
                heapq.heappush(self.heap, (next_at, job.due_at, str(key)))
            case FailureClass.PERMANENT:
                self._save(job, state=JobState.DEAD, failure=failure, last_error=reason)
            case FailureClass.CONFIGURATION:
                self._halt(key.chain, reason)
                self._save(job, state=JobState.PARKED, failure=failure, last_error=reason)

    def _mend_spec(self, txn: Txn, found: MarketDiscovered) -> None:
        """A known market found again (``listener_recover``, a rescan): its spec is written
        again if the stored one is missing or does not decode (reported)."""
        try:
            if txn.get("markets", found.key.db_key(), MarketSpec) is not None:
                return
        except StoredValueError as exc:
            self.store.report_bad_value(exc)
        txn.put("markets", found.key.db_key(), found.spec)
        log.warning("%s: the spec of %s is written again from its discovery", self.name, found.key)

    def _halt(self, chain: str, reason: str) -> None:
        """Halt ``chain`` for ``reason`` (a chain already halted keeps its first reason)."""
        if chain not in self.halted:
            log.error("chain %s halted: %s", chain, reason)
            self._keep_halts({**self.halted, chain: reason})

    def _lift(self, chain: str) -> None:
        log.warning("chain %s resumed (an operator dealt with its parked market)", chain)
        self._keep_halts({c: r for c, r in self.halted.items() if c != chain})

    def _keep_halts(self, halted: dict[str, str]) -> None:
        """Make ``halted`` the halts, durable (in ``meta``) before they count."""
        record = HaltedChains(reasons=halted)
        self.store.write(lambda txn: txn.put("meta", HALTED_CHAINS_KEY, record))
        self.halted = halted

    # --- operators: every act audited with the change ------------------------------------

    def _operator(self, cmd: OperatorCommand) -> CommandResult:
        job = self._job(cmd.key)
        if job is None:
            return CommandResult(ok=False, error=f"unknown market {cmd.key}")
        now = self.clock.now()
        allowed, changes = self._operator_change(cmd, job, now)
        if not allowed:
            return CommandResult(ok=False, state=job.state.value, error=changes["error"])
        if cmd.action is OperatorAction.CANCEL and str(cmd.key) in self.running:
            self.registry.ask(self.resolvers, StopChild(child_id=resolver_name(cmd.key)), 10.0)
            self.running.discard(str(cmd.key))
        # the market that halted its chain (parked for a configuration failure), retried,
        # cancelled or overridden: the operator has dealt with it
        lifts = cmd.action is OperatorAction.RETRY or (
            cmd.action in (OperatorAction.CANCEL, OperatorAction.OVERRIDE)
            and job.failure is FailureClass.CONFIGURATION
        )
        if lifts and cmd.key.chain in self.halted:
            self._lift(cmd.key.chain)
        entry = self._audit(
            cmd.action.value,
            cmd.key,
            operator=cmd.operator,
            reason=cmd.reason,
            outcome="" if cmd.outcome is None else str(cmd.outcome),
        )
        updated = self._save(job, audit=entry, **changes)
        if updated.state is JobState.WAITING:
            heapq.heappush(self.heap, (updated.next_attempt_at, updated.due_at, str(cmd.key)))
        return CommandResult(ok=True, state=updated.state.value)

    def _operator_change(
        self, cmd: OperatorCommand, job: Job, now: float
    ) -> tuple[bool, dict[str, Any]]:
        state = job.state
        match cmd.action:
            case OperatorAction.RETRY if state in (JobState.DEAD, JobState.PARKED):
                return True, {
                    "state": JobState.WAITING,
                    "attempts": 0,
                    "first_attempt_at": None,
                    "next_attempt_at": now,
                }
            case OperatorAction.CANCEL if state is not JobState.FINALIZED:
                return True, {"state": JobState.CANCELLED}
            case OperatorAction.RESOLVE_NOW if state is JobState.WAITING:
                return True, {"next_attempt_at": now}
            case OperatorAction.PAUSE if state is JobState.WAITING:
                return True, {"state": JobState.PAUSED}
            case OperatorAction.UNPAUSE if state is JobState.PAUSED:
                return True, {"state": JobState.WAITING, "next_attempt_at": now}
            case OperatorAction.OVERRIDE:
                if cmd.outcome is None or not cmd.reason.strip():
                    return False, {"error": "an override needs an outcome and a reason"}
                if state in (JobState.FINALIZED, JobState.RUNNING):
                    return False, {"error": f"cannot override a {state.value} market"}
                return True, {
                    "override_outcome": cmd.outcome,
                    "override_reason": cmd.reason,
                    "state": JobState.WAITING,
                    "next_attempt_at": now,
                }
        return False, {"error": f"cannot {cmd.action.value} a {state.value} market"}

    # --- LMDB ----------------------------------------------------------------------------

    def _job(self, key: MarketKey) -> Job | None:
        text = str(key)
        known = self.unsaved.get(text)
        if known is None:
            known = self.cached.get(text)
        if known is not None:
            return known
        job = self.store.get_lenient("jobs", key.db_key(), Job)
        if job is not None:
            self._remember([job])
        return job

    def _remember(self, jobs: list[Job]) -> None:
        """Keep ``jobs``, as now written, for the next ``_job`` (a bounded, recently-used set).

        Every LMDB read costs a GIL round trip (py-lmdb releases it around each call) and a
        decode; a burst reads each running market's job once per resolver report."""
        for job in jobs:
            text = str(job.key)
            self.cached[text] = job
            self.cached.move_to_end(text)
        while len(self.cached) > JOB_CACHE:
            self.cached.popitem(last=False)

    def _save(self, job: Job, audit: AuditEntry | None = None, **changes: Any) -> Job:
        return self._save_all([(job, changes)], audit)[0]

    def _save_all(
        self,
        changes: list[tuple[Job, dict[str, Any]]],
        audit: AuditEntry | None = None,
        *,
        durable: bool = False,
    ) -> list[Job]:
        """Apply every job change (with its audit entry); written by the next ``_Flush``, or
        before returning when ``durable``."""
        updated = [job.model_copy(update=change) for job, change in changes]
        for (job, _), new in zip(changes, updated, strict=True):
            self.unsaved[str(new.key)] = new
            entry = audit
            if entry is None and new.state is not job.state:
                entry = self._audit(new.state.value, job.key, error=new.last_error)
            if entry is not None:
                self.unsaved_audit.append(entry)
        if durable:
            self._flush()
        elif not self.flush_pending:
            self.flush_pending = True
            self.actor_ref.tell(_Flush())
        for (job, _), new in zip(changes, updated, strict=True):
            if new.state is not job.state:
                self._count(job.state, -1)
                self._count(new.state, +1)
            text = str(job.key)
            if new.state in (JobState.WAITING, JobState.RUNNING):
                self.due[text] = new.due_at
            else:
                self.due.pop(text, None)
                self.disputes.pop(text, None)
        return updated

    def _flush(self) -> None:
        """Write every unsaved job move and audit entry in one durable transaction."""
        if not self.unsaved and not self.unsaved_audit:
            return
        jobs, entries = list(self.unsaved.values()), self.unsaved_audit

        def write(txn: Txn) -> None:
            JOBS.put_many(txn, [(job.key.db_key(), job) for job in jobs])
            for entry in entries:
                txn.audit(entry)

        self.store.write(write)
        self._remember(jobs)
        self.unsaved, self.unsaved_audit = {}, []

    def _audit(self, action: str, key: MarketKey, **detail: str) -> AuditEntry:
        return AuditEntry(
            ts=self.clock.now(),
            actor=self.name,
            action=action,
            subject=str(key),
            detail={k: v for k, v in detail.items() if v},
        )

    def _count(self, state: JobState, delta: int) -> None:
        self.counts[state.value] = self.counts.get(state.value, 0) + delta


def backoff_ceiling(base_s: float, cap_s: float, failures: int) -> float:
    """The longest wait after the ``failures``-th transient failure in a row: ``base_s``
    after the first, doubled after each further one, at most ``cap_s``.

    >>> [backoff_ceiling(5, 300, n) for n in (1, 2, 3, 8)]
    [5.0, 10.0, 20.0, 300.0]
    """
    return float(min(cap_s, base_s * 2 ** min(max(0, failures - 1), 64)))
