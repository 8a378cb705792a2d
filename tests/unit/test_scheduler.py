"""The scheduler on a real LMDB store, with scripted resolvers and a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from actors.scheduler import Scheduler, backoff_ceiling
from protocol.codec import CODEC, pack, unpack
from protocol.messages import (
    FailureClass,
    OperatorAction,
    OperatorCommand,
    ResolutionFailed,
    ResolutionProgress,
    StopChild,
)
from protocol.records import HALTED_CHAINS_KEY, AuditEntry, HaltedChains, Job, JobState
from protocol.spec import MarketKey
from protocol.supervision import ChildSpec, Intensity, SupervisorSpec
from storage import Store
from storage.indexes import JOBS
from supervision import ManualClock, Runtime, SupervisedActor
from tests.unit.markets import T_END, discovered, key

pytestmark = pytest.mark.timeout(30)


class ScriptedResolver(SupervisedActor):
    """Does what ``extra["script"][key]`` says next: finalize, park, a failure class, or hold."""

    def init(self) -> None:
        key = MarketKey.parse(self.ctx.args["key"])
        scheduler = self.ctx.args["scheduler"]
        self.services.extra.setdefault("started", []).append(str(key))
        self.services.extra.setdefault("args", {})[str(key)] = dict(self.ctx.args)
        script: dict[str, list[str]] = self.services.extra["script"]
        step = script.get(str(key), ["finalize"]).pop(0) if script.get(str(key)) else "finalize"
        if step == "hold":
            return
        if step == "vanish":  # stops without a word, as a resolver that crashed for good
            self.finish()
            return
        if step == "finalize":
            self.registry.tell(scheduler, ResolutionProgress(key=key, state="FINALIZED"))
        elif step == "wait":
            resume = {"resume_at": self.clock.now() + 100}
            self.registry.tell(
                scheduler, ResolutionProgress(key=key, state="COMMITTED", detail=resume)
            )
        elif step == "park":
            detail = {"reason": "foreign commit"}
            self.registry.tell(
                scheduler, ResolutionProgress(key=key, state="PARKED", detail=detail)
            )
        else:
            failure = FailureClass(step)
            self.registry.tell(
                scheduler, ResolutionFailed(key=key, failure=failure, reason=f"{step} trouble")
            )
        self.finish()


@contextmanager
def scheduler(tmp_path: Path, max_resolvers: int = 10, **args: Any) -> Iterator[Runtime]:
    tree = SupervisorSpec(
        intensity=Intensity(max_restarts=10, period_s=60),
        children=(
            ChildSpec(
                id="scheduler",
                actor="scheduler",
                args={"settle_delay_s": 60, "tick_s": 1, "seed": 7, **args},
            ),
            ChildSpec(
                id="resolvers",
                actor="supervisor",
                supervisor=SupervisorSpec(max_children=max_resolvers),
            ),
        ),
    )
    with Store.open(tmp_path / "data") as store:
        clock = ManualClock(start=T_END - 100)
        types = {"scheduler": Scheduler, "resolver": ScriptedResolver}
        extra = {"store": store, "script": {}}
        with Runtime(tree, actor_types=types, clock=clock, extra=extra) as rt:
            yield rt


def jobs(rt: Runtime) -> dict[str, Job]:
    store: Store = rt.services.extra["store"]
    return {str(job.key): job for _, job in store.items("jobs", expect=Job)}


def states(rt: Runtime) -> dict[str, str]:
    return {k: j.state.value for k, j in jobs(rt).items()}


def advance_until(rt: Runtime, seconds: float, predicate: Any) -> None:
    rt.clock.advance(seconds)
    rt.wait_for(predicate, timeout=5)


def drive(rt: Runtime, predicate: Any, step: float = 1.0, max_steps: int = 120) -> None:
    """Advance the clock a step at a time, letting the actors catch up, until ``predicate``."""
    for _ in range(max_steps):
        try:
            rt.wait_for(predicate, timeout=0.05)
            return
        except TimeoutError:
            rt.clock.advance(step)
    rt.wait_for(predicate, timeout=5)


def test_a_market_discovered_twice_is_one_job(tmp_path: Path) -> None:
    with scheduler(tmp_path) as rt:
        assert rt.ask("scheduler", discovered(key(1))).detail == "new"
        assert rt.ask("scheduler", discovered(key(1))).detail == "known"
        assert list(states(rt).values()) == ["waiting"]
        assert jobs(rt)[str(key(1))].due_at == T_END + 60


def test_jobs_start_when_due_and_finalize(tmp_path: Path) -> None:
    with scheduler(tmp_path) as rt:
        rt.ask("scheduler", discovered(key(1)))
        rt.clock.advance(150)  # 10 s before due
        assert states(rt) == {str(key(1)): "waiting"}
        advance_until(rt, 11, lambda: states(rt) == {str(key(1)): "finalized"})


def test_a_resolver_is_told_when_its_job_has_no_override_to_look_for(tmp_path: Path) -> None:
    """An override can be set only while no resolver works the job, so the scheduler tells a
    resolver it need not read the job for one (``override`` False): one read a market less."""
    with scheduler(tmp_path) as rt:
        for n in (1, 2):
            rt.ask("scheduler", discovered(key(n)))
        override = OperatorCommand(
            action=OperatorAction.OVERRIDE, key=key(2), operator="bob", outcome=1, reason="x"
        )
        assert rt.ask("scheduler", override).ok
        advance_until(rt, 200, lambda: len(rt.services.extra.get("args", {})) == 2)
        args = rt.services.extra["args"]
        assert args[str(key(1))]["override"] is False
        assert "override" not in args[str(key(2))]  # the resolver reads the job, as it did


def test_a_full_pool_holds_due_jobs_back_in_due_order(tmp_path: Path) -> None:
    with scheduler(tmp_path, max_resolvers=2) as rt:
        for n, t_end in ((1, T_END + 3), (2, T_END + 1), (3, T_END + 2), (4, T_END)):
            rt.ask("scheduler", discovered(key(n), t_end=t_end))
            rt.services.extra["script"][str(key(n))] = ["hold", "finalize"]
        started: list[str] = rt.services.extra.setdefault("started", [])
        advance_until(rt, 200, lambda: len(started) == 2)
        assert started == [str(key(4)), str(key(2))]  # the earliest due first
        for _ in range(3):
            rt.clock.advance(1)
            rt.state("scheduler")  # answered after the tick queued before it
        assert len(started) == 2  # full: the others wait
        rt.ask("resolvers", StopChild(child_id=f"resolver:{key(4)}"))
        drive(rt, lambda: len(started) == 3)
        assert started[2] == str(key(3))  # next in due order, not key 1


def test_the_backoff_ceiling_starts_at_the_base_and_doubles_to_the_cap() -> None:
    assert [backoff_ceiling(5, 300, n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff_ceiling(5, 300, 10_000) == 300  # no overflow


def test_transient_failures_back_off_with_jitter_until_the_budget_is_spent(
    tmp_path: Path,
) -> None:
    with scheduler(tmp_path, max_attempts=3, retry_base_s=10, retry_cap_s=15) as rt:
        rt.services.extra["script"][str(key(1))] = ["transient"] * 5
        rt.ask("scheduler", discovered(key(1)))
        advance_until(rt, 161, lambda: jobs(rt)[str(key(1))].attempts == 1)
        rt.wait_for(lambda: jobs(rt)[str(key(1))].state is JobState.WAITING)
        first = jobs(rt)[str(key(1))]
        assert first.failure is FailureClass.TRANSIENT
        assert rt.clock.now() <= first.next_attempt_at <= rt.clock.now() + 10  # the base
        drive(rt, lambda: jobs(rt)[str(key(1))].state is JobState.DEAD)
        assert "retry budget spent after 3 attempts" in jobs(rt)[str(key(1))].last_error
        assert len(rt.services.extra["started"]) == 3


def test_permanent_failure_goes_to_the_dead_letter_queue_and_retry_works(
    tmp_path: Path,
) -> None:
    with scheduler(tmp_path) as rt:
        rt.services.extra["script"][str(key(1))] = ["permanent", "finalize"]
        rt.ask("scheduler", discovered(key(1)))
        advance_until(rt, 161, lambda: states(rt)[str(key(1))] == "dead")
        assert jobs(rt)[str(key(1))].last_error == "permanent trouble"
        retry = OperatorCommand(action=OperatorAction.RETRY, key=key(1), operator="alice")
        assert rt.ask("scheduler", retry).ok
        advance_until(rt, 1, lambda: states(rt)[str(key(1))] == "finalized")
        store: Store = rt.services.extra["store"]
        actions = [e.action for _, e in store.items("audit", expect=AuditEntry)]
        assert actions == ["discovered", "running", "dead", "retry", "running", "finalized"]


def test_a_resolver_that_keeps_vanishing_spends_the_retry_budget(tmp_path: Path) -> None:
    with scheduler(tmp_path, max_attempts=3, retry_base_s=1, retry_cap_s=2) as rt:
        rt.services.extra["script"][str(key(1))] = ["vanish"] * 5
        rt.ask("scheduler", discovered(key(1)))
        drive(rt, lambda: jobs(rt)[str(key(1))].state is JobState.DEAD, max_steps=200)
        dead = jobs(rt)[str(key(1))]
        assert dead.attempts == 3 and dead.failure is FailureClass.TRANSIENT
        assert "retry budget spent after 3 attempts" in dead.last_error
        assert "its resolver stopped without a report" in dead.last_error
        assert len(rt.services.extra["started"]) == 3


def test_a_configuration_failure_halts_the_chain(tmp_path: Path) -> None:
    with scheduler(tmp_path) as rt:
        rt.services.extra["script"][str(key(1))] = ["configuration"]
        rt.ask("scheduler", discovered(key(1)))
        rt.ask("scheduler", discovered(key(2), t_end=T_END + 5))
        rt.ask("scheduler", discovered(key(3, chain="other"), t_end=T_END + 5))
        advance_until(rt, 161, lambda: states(rt)[str(key(1))] == "parked")
        advance_until(rt, 10, lambda: states(rt)[str(key(3, chain="other"))] == "finalized")
        assert states(rt)[str(key(2))] == "waiting"
        assert rt.state("scheduler")["halted_chains"] == ["dev"]
        reason = jobs(rt)[str(key(1))].last_error
        assert rt.state("scheduler")["halt_reasons"] == {"dev": reason}
    with scheduler(tmp_path) as rt:  # a restart keeps the halt: it is in ``meta``
        assert rt.state("scheduler")["halt_reasons"] == {"dev": reason}
        rt.clock.advance(200)  # key 2 is long due: its tick and dispatch round are queued
        rt.state("scheduler")  # answered after the tick, which asked for the round
        snapshot = rt.state("scheduler")  # answered after the round
        assert snapshot["running"] == [] and snapshot["jobs"]["waiting"] == 1
        rt.services.extra["script"][str(key(1))] = ["finalize"]
        retry = OperatorCommand(action=OperatorAction.RETRY, key=key(1), operator="carol")
        assert rt.ask("scheduler", retry).ok
        assert rt.state("scheduler")["halted_chains"] == []
        advance_until(
            rt,
            2,
            lambda: states(rt)[str(key(1))] == states(rt)[str(key(2))] == "finalized",
        )
    with scheduler(tmp_path) as rt:  # and the lifted halt stays lifted
        assert rt.state("scheduler")["halted_chains"] == []


def test_a_halt_is_lifted_by_cancelling_its_parked_market_or_when_none_is_left(
    tmp_path: Path,
) -> None:
    with scheduler(tmp_path) as rt:
        rt.services.extra["script"][str(key(1))] = ["configuration"]
        rt.ask("scheduler", discovered(key(1)))
        advance_until(rt, 161, lambda: states(rt)[str(key(1))] == "parked")
        assert rt.state("scheduler")["halted_chains"] == ["dev"]
        cancel = OperatorCommand(action=OperatorAction.CANCEL, key=key(1), operator="dana")
        assert rt.ask("scheduler", cancel).ok
        assert rt.state("scheduler")["halted_chains"] == []
    store_halt = HaltedChains(reasons={"dev": "COMMIT_SENT: NotResolver"})
    with Store.open(tmp_path / "data") as store:  # a halt left with no parked market at all
        store.put("meta", HALTED_CHAINS_KEY, store_halt)
    with scheduler(tmp_path) as rt:
        assert rt.state("scheduler")["halted_chains"] == []


def test_operator_commands_are_checked_and_audited(tmp_path: Path) -> None:
    with scheduler(tmp_path) as rt:
        rt.ask("scheduler", discovered(key(1)))
        k = key(1)

        def act(action: OperatorAction, **kw: Any) -> Any:
            return rt.ask("scheduler", OperatorCommand(action=action, key=k, operator="bob", **kw))

        assert not act(OperatorAction.OVERRIDE, outcome=1).ok  # no reason
        assert act(OperatorAction.OVERRIDE, outcome=1, reason="API outage").ok
        assert jobs(rt)[str(k)].override_outcome == 1
        assert act(OperatorAction.PAUSE).state == "paused"
        assert not act(OperatorAction.RESOLVE_NOW).ok
        assert act(OperatorAction.UNPAUSE).state == "waiting"
        assert act(OperatorAction.CANCEL).state == "cancelled"
        assert (
            "unknown market"
            in rt.ask(
                "scheduler", OperatorCommand(action=OperatorAction.RETRY, key=key(9), operator="x")
            ).error
        )
        store: Store = rt.services.extra["store"]
        audit = [e for _, e in store.items("audit", expect=AuditEntry)]
        assert [e.action for e in audit] == ["discovered", "override", "pause", "unpause", "cancel"]
        assert audit[1].detail == {"operator": "bob", "reason": "API outage", "outcome": "1"}


def test_a_restarted_scheduler_resumes_from_lmdb(tmp_path: Path) -> None:
    with scheduler(tmp_path) as rt:
        rt.services.extra["script"][str(key(1))] = ["hold", "finalize"]
        rt.ask("scheduler", discovered(key(1)))
        rt.ask("scheduler", discovered(key(2), t_end=T_END + 1000))
        advance_until(rt, 161, lambda: states(rt)[str(key(1))] == "running")
        rt.tell("scheduler", "not a message")  # crashes it
        rt.wait_for(lambda: rt.restarts("scheduler") == 1)
        assert rt.state("scheduler")["jobs"] == {"running": 1, "waiting": 1}
        assert rt.ask("scheduler", discovered(key(2))).detail == "known"


def test_a_corrupt_job_is_reported_and_skipped_not_a_crash(tmp_path: Path) -> None:
    import lmdb

    with scheduler(tmp_path) as rt:
        rt.ask("scheduler", discovered(key(1)))
        rt.ask("scheduler", discovered(key(2)))
    with lmdb.open(str(tmp_path / "data"), max_dbs=16) as env:
        jobs_db = env.open_db(b"jobs")
        with env.begin(write=True) as txn:
            txn.put(key(1).db_key(), b"\x93garbage", db=jobs_db)
    with scheduler(tmp_path) as rt:
        state = rt.state("scheduler")
        assert state["waiting_heap"] == 1  # the readable one; the other was reported
        assert state["jobs"] == {"waiting": 2}  # the index's count: what the store holds
        assert rt.restarts("scheduler") == 0


def test_a_job_written_over_moves_the_counts_the_index_moves(tmp_path: Path) -> None:
    """A stored job whose envelope still shows its state but does not validate: found again,
    it is written anew, and the scheduler's counts move by the state the index counted for it,
    as the index's own do (not by "unreadable")."""
    import lmdb

    with scheduler(tmp_path) as rt:
        rt.ask("scheduler", discovered(key(1), t_end=T_END + 10**6))
    envelope = unpack(CODEC.encode(Job(key=key(1), due_at=1.0, next_attempt_at=1.0)))
    envelope["data"]["due_at"] = "not a time"  # peeks as "waiting"; fails to validate
    with lmdb.open(str(tmp_path / "data"), max_dbs=16) as env:
        jobs_db = env.open_db(b"jobs")  # before the write transaction: it opens its own
        with env.begin(write=True) as txn:
            txn.put(key(1).db_key(), pack(envelope), db=jobs_db)
    with scheduler(tmp_path) as rt:
        assert rt.ask("scheduler", discovered(key(1), t_end=T_END + 10**6)).detail == "new"
        counts = {k: n for k, n in rt.state("scheduler")["jobs"].items() if n}
        store: Store = rt.services.extra["store"]
        assert counts == JOBS.counts(store) == {"waiting": 1}
        assert rt.restarts("scheduler") == 0


def test_a_committed_market_waits_out_its_dispute_window_without_a_resolver(
    tmp_path: Path,
) -> None:
    with scheduler(tmp_path, max_resolvers=1) as rt:
        rt.services.extra["script"][str(key(1))] = ["wait", "finalize"]
        rt.ask("scheduler", discovered(key(1)))
        rt.ask("scheduler", discovered(key(2), t_end=T_END + 1))
        started: list[str] = rt.services.extra.setdefault("started", [])
        advance_until(rt, 161, lambda: jobs(rt)[str(key(1))].stage == "COMMITTED")
        waiting = jobs(rt)[str(key(1))]
        assert (waiting.state, waiting.attempts) == (JobState.WAITING, 1)
        # the pool of one is free again: the next market runs while the first waits
        drive(rt, lambda: states(rt)[str(key(2))] == "finalized")
        assert states(rt)[str(key(1))] == "waiting"
        drive(rt, lambda: states(rt)[str(key(1))] == "finalized", max_steps=200)
        assert jobs(rt)[str(key(1))].attempts == 1  # resuming is not another attempt
        assert started.count(str(key(1))) == 2


def test_the_retry_age_counts_from_the_first_attempt_not_the_due_time(tmp_path: Path) -> None:
    with scheduler(tmp_path, max_attempts=3, max_age_s=100, retry_base_s=1, retry_cap_s=2) as rt:
        rt.services.extra["script"][str(key(1))] = ["transient", "transient", "finalize"]
        rt.ask("scheduler", discovered(key(1)))
        rt.clock.advance(10_000)  # discovered long after it was due (a recovery, a replay)
        drive(rt, lambda: states(rt)[str(key(1))] == "finalized")
        assert jobs(rt)[str(key(1))].attempts == 3


def test_jobs_stored_without_their_index_are_indexed_again_and_loaded(tmp_path: Path) -> None:
    with scheduler(tmp_path) as rt:
        rt.ask("scheduler", discovered(key(1)))
    stray = Job(key=key(2), due_at=T_END + 60, next_attempt_at=T_END + 60)
    with Store.open(tmp_path / "data") as store:  # a job written by hand, no index kept
        store.put("jobs", key(2).db_key(), stray)
    with scheduler(tmp_path) as rt:
        state = rt.state("scheduler")
        assert state["jobs"] == {"waiting": 2} and state["waiting_heap"] == 2
        store = rt.services.extra["store"]
        assert sorted(JOBS.live_keys(store)) == sorted([key(1).db_key(), key(2).db_key()])
