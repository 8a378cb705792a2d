"""Supervisor semantics, in the spirit of OTP's own supervisor tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from protocol.messages import (
    CheckChildren,
    ChildStarted,
    StartChild,
    StartChildren,
    StopChild,
    WhichChildren,
)
from protocol.supervision import (
    Backoff,
    ChildSpec,
    FaultAction,
    FaultRule,
    Intensity,
    RestartType,
    Strategy,
    SupervisorSpec,
)
from supervision import (
    FaultPlan,
    InjectedFault,
    ManualClock,
    NotRegistered,
    Runtime,
    SupervisedActor,
)
from tests.unit.supervision_actors import TYPES, Boom, Done, Ping, worker

pytestmark = pytest.mark.timeout(30)


@contextmanager
def tree(
    *children: ChildSpec,
    strategy: Strategy = Strategy.ONE_FOR_ONE,
    intensity: Intensity | None = None,
    backoff: Backoff | None = None,
    max_children: int | None = None,
    faults: FaultPlan | None = None,
    actor_types: dict[str, type[SupervisedActor]] = TYPES,
    pooled_threads: int = 0,
) -> Iterator[Runtime]:
    spec = SupervisorSpec(
        strategy=strategy,
        intensity=intensity or Intensity(max_restarts=10, period_s=60),
        backoff=backoff or Backoff(),
        children=children,
        max_children=max_children,
    )
    with Runtime(
        spec,
        actor_types=actor_types,
        clock=ManualClock(),
        faults=faults,
        pooled_threads=pooled_threads,
    ) as rt:
        yield rt


def incarnations(rt: Runtime, *names: str) -> tuple[int, ...]:
    return tuple(rt.ask(name, Ping(), timeout=5) for name in names)


def events(rt: Runtime) -> list[tuple[Any, ...]]:
    return list(rt.services.extra.get("events", []))


def crash_and_wait(rt: Runtime, name: str, expected: tuple[int, ...], *names: str) -> None:
    rt.tell(name, Boom())
    rt.wait_for(lambda: incarnations(rt, *names) == expected, timeout=5)


def test_children_start_in_order() -> None:
    with tree(worker("a"), worker("b"), worker("c")) as rt:
        rt.wait_for(lambda: len(events(rt)) == 3)
        assert [e[1] for e in events(rt)] == ["a", "b", "c"]


def test_one_for_one_restarts_only_the_crashed_child() -> None:
    with tree(worker("a"), worker("b"), worker("c")) as rt:
        assert incarnations(rt, "a", "b", "c") == (1, 1, 1)
        crash_and_wait(rt, "b", (1, 2, 1), "a", "b", "c")
        assert rt.restarts("b") == 1 and rt.restarts("a") == 0


def test_one_for_all_restarts_everyone_stopping_in_reverse() -> None:
    with tree(worker("a"), worker("b"), worker("c"), strategy=Strategy.ONE_FOR_ALL) as rt:
        incarnations(rt, "a", "b", "c")
        crash_and_wait(rt, "b", (2, 2, 2), "a", "b", "c")
        after_crash = [e for e in events(rt)[3:]]
        stops = [e[1] for e in after_crash if e[0] == "stop"]
        starts = [e[1] for e in after_crash if e[0] == "start"]
        assert stops == ["b", "c", "a"]  # b crashed; the others stop in reverse order
        assert starts == ["a", "b", "c"]


def test_a_static_child_starts_only_after_its_elder_sibling_has_started() -> None:
    with tree(worker("a", slow_start_s=0.2), worker("b")) as rt:
        incarnations(rt, "a", "b")
        assert [e[1] for e in events(rt) if e[0] == "start"] == ["a", "b"]


def test_a_child_slower_than_its_start_timeout_delays_its_siblings_but_does_not_block_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    slow = worker("a", slow_start_s=2.0).model_copy(update={"start_timeout_s": 0.1})
    with tree(slow, worker("b")) as rt:
        assert rt.ask("b", Ping(), timeout=10) == 1
        assert [e[1] for e in events(rt) if e[0] == "start"] == ["b"]  # a is still starting
        assert "a still starting after 0.1s" in caplog.text
        rt.wait_for(lambda: incarnations(rt, "a") == (1,), timeout=5)


def test_rest_for_one_restarts_the_crashed_child_and_those_after_it() -> None:
    with tree(worker("a"), worker("b"), worker("c"), strategy=Strategy.REST_FOR_ONE) as rt:
        incarnations(rt, "a", "b", "c")
        crash_and_wait(rt, "b", (1, 2, 2), "a", "b", "c")


@pytest.mark.parametrize(
    ("restart", "after_crash", "after_normal"),
    [
        (RestartType.PERMANENT, True, True),
        (RestartType.TRANSIENT, True, False),
        (RestartType.TEMPORARY, False, False),
    ],
)
def test_restart_types(restart: RestartType, after_crash: bool, after_normal: bool) -> None:
    with tree(worker("crashy", restart), worker("quitter", restart)) as rt:
        incarnations(rt, "crashy", "quitter")
        rt.tell("crashy", Boom())
        rt.tell("quitter", Done())
        children = lambda: {c.child_id: c for c in rt.ask("root", WhichChildren())}  # noqa: E731
        rt.wait_for(lambda: not rt.alive("crashy") or rt.restarts("crashy") == 1)
        rt.wait_for(lambda: not rt.alive("quitter") or rt.restarts("quitter") == 1)
        rt.wait_for(lambda: ("crashy" in children()) == after_crash)
        rt.wait_for(lambda: ("quitter" in children()) == after_normal)
        if after_crash:
            assert rt.ask("crashy", Ping(), timeout=5) == 2
        else:
            with pytest.raises(NotRegistered):
                rt.ask("crashy", Ping(), timeout=0.2)


def test_intensity_exceeded_fails_the_root_and_stops_its_children() -> None:
    limit = Intensity(max_restarts=2, period_s=10)
    with tree(worker("a"), worker("b"), worker("c"), intensity=limit) as rt:
        crash_and_wait(rt, "a", (2,), "a")
        crash_and_wait(rt, "a", (3,), "a")
        assert not rt.failed.is_set()
        rt.tell("a", Boom(text="third"))
        rt.wait_for(rt.failed.is_set, timeout=5)
        assert "3 restarts in 10s exceed 2" in rt.failure
        assert "third" in rt.failure
        rt.wait_for(lambda: not any(rt.alive(name) for name in "abc"))
        # a's crash stopped a; the failing root then stopped the others in reverse order
        assert events(rt)[-3:] == [("stop", "a"), ("stop", "c"), ("stop", "b")]


def test_restarts_spread_over_more_than_the_period_do_not_count() -> None:
    with tree(worker("a"), intensity=Intensity(max_restarts=1, period_s=10)) as rt:
        clock: ManualClock = rt.clock
        for expected in (2, 3, 4):
            crash_and_wait(rt, "a", (expected,), "a")
            clock.advance(11)
        assert not rt.failed.is_set()


def test_a_failing_subtree_escalates_to_its_parent() -> None:
    inner = SupervisorSpec(
        intensity=Intensity(max_restarts=1, period_s=60),
        children=(worker("leaf"), worker("sibling")),
    )
    sub = ChildSpec(id="sub", actor="supervisor", supervisor=inner)
    with tree(worker("first"), sub, strategy=Strategy.ONE_FOR_ONE) as rt:
        assert incarnations(rt, "first", "leaf", "sibling") == (1, 1, 1)
        crash_and_wait(rt, "leaf", (2,), "leaf")
        rt.tell("leaf", Boom(text="again"))  # the inner supervisor gives up; root restarts it
        rt.wait_for(lambda: rt.restarts("sub") == 1, timeout=5)
        assert "exceed 1" in rt.registry.entry("sub").last_error  # type: ignore[union-attr]
        rt.wait_for(lambda: incarnations(rt, "leaf", "sibling") == (1, 1), timeout=5)
        assert incarnations(rt, "first") == (1,)
        assert not rt.failed.is_set()


def test_stop_shuts_down_in_reverse_order_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with tree(worker("a"), worker("b"), worker("c")) as rt:
        incarnations(rt, "a", "b", "c")
    assert [e[1] for e in events(rt) if e[0] == "stop"] == ["c", "b", "a"]
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert left == []


def test_a_crash_inside_ask_reaches_the_asker_and_restarts_the_child() -> None:
    with tree(worker("a")) as rt:
        with pytest.raises(RuntimeError, match="asked to fail"):
            rt.ask("a", Boom(text="asked to fail"), timeout=5)
        rt.wait_for(lambda: incarnations(rt, "a") == (2,))
        assert "asked to fail" in rt.registry.entry("a").last_error  # type: ignore[union-attr]


def test_a_failing_start_is_a_crash() -> None:
    with tree(worker("shy", fail_start=2)) as rt:
        rt.wait_for(lambda: incarnations(rt, "shy") == (3,), timeout=5)
        assert rt.restarts("shy") == 2


def test_messages_told_while_restarting_reach_the_next_incarnation() -> None:
    backoff = Backoff(initial_s=5, max_s=5)
    with tree(worker("a"), backoff=backoff) as rt:
        incarnations(rt, "a")
        rt.tell("a", Boom())
        rt.wait_for(lambda: not rt.alive("a"))
        for n in range(3):
            assert rt.tell("a", Ping(n=n))
        clock: ManualClock = rt.clock
        assert not rt.alive("a")  # still backing off
        clock.advance(5)
        rt.wait_for(lambda: rt.state("a")["seen"] == [0, 1, 2])
        assert rt.state("a")["incarnation"] == 2


def test_backoff_grows_for_quick_consecutive_restarts() -> None:
    backoff = Backoff(initial_s=1, max_s=3)
    with tree(worker("a"), backoff=backoff) as rt:
        clock: ManualClock = rt.clock
        for n, delay in enumerate((1, 2, 3), start=2):
            rt.tell("a", Boom())
            rt.wait_for(lambda: not rt.alive("a"))
            clock.advance(delay - 0.5)
            assert not rt.alive("a")
            clock.advance(0.5)
            rt.wait_for(lambda n=n: incarnations(rt, "a") == (n,))


def test_dynamic_children_respect_the_maximum_and_free_their_slot() -> None:
    with tree(max_children=2) as rt:
        start = lambda cid: rt.ask("root", StartChild(spec=worker(cid, RestartType.TRANSIENT)))  # noqa: E731
        assert start("r1") == ChildStarted(child_id="r1", started=True)
        assert start("r1").reason == "already_running"
        assert start("r2").started
        assert start("r3") == ChildStarted(child_id="r3", started=False, reason="full")
        rt.tell("r1", Done())
        rt.wait_for(lambda: start("r3").started)
        rt.ask("root", StopChild(child_id="r2"))
        assert {c.child_id for c in rt.ask("root", WhichChildren())} == {"r3"}


def test_a_batch_of_dynamic_children_starts_in_order_until_full() -> None:
    with tree(max_children=3) as rt:
        rt.ask("root", StartChild(spec=worker("r1", RestartType.TRANSIENT)))
        specs = tuple(worker(cid, RestartType.TRANSIENT) for cid in ("r1", "r2", "r3", "r4"))
        answer = rt.ask("root", StartChildren(specs=specs))
        assert [(r.child_id, r.reason) for r in answer.results] == [
            ("r1", "already_running"),
            ("r2", "started"),
            ("r3", "started"),
            ("r4", "full"),
        ]
        children = lambda: len(rt.ask("root", WhichChildren()))  # noqa: E731
        rt.tell("r2", Done())
        rt.wait_for(lambda: children() == 2)
        later = tuple(worker(cid, RestartType.TRANSIENT) for cid in ("r4", "r4", "r5", "r6"))
        answer = rt.ask("root", StartChildren(specs=later))
        assert [r.reason for r in answer.results] == ["started", "already_running", "full", "full"]
        assert children() == 3


def test_fault_plan_raise_crashes_on_the_chosen_message() -> None:
    plan = FaultPlan([FaultRule(actor="b", message="test_ping", action=FaultAction.RAISE)])
    with tree(worker("a"), worker("b"), faults=plan) as rt:
        with pytest.raises(InjectedFault):
            rt.ask("b", Ping(), timeout=5)
        assert incarnations(rt, "a", "b") == (1, 2)
        assert [f.actor for f in plan.fired] == ["b"]


def test_fault_plan_silent_stop_is_noticed_by_the_supervisor() -> None:
    plan = FaultPlan([FaultRule(actor="a", message="test_ping", action=FaultAction.STOP)])
    with tree(worker("a"), faults=plan) as rt:
        rt.tell("a", Ping(n=1))
        rt.wait_for(lambda: not rt.alive("a"))
        rt.clock.advance(1.0)  # the periodic CheckChildren finds the dead ref
        rt.wait_for(lambda: incarnations(rt, "a") == (2,))
        assert "found dead" in rt.registry.entry("a").last_error  # type: ignore[union-attr]


def test_a_child_still_stopping_normally_is_not_taken_for_dead() -> None:
    """pykka marks an actor dead before its ``on_stop`` reports the exit: a check arriving in
    between must wait for that report, not restart a child that finished."""
    gate = threading.Event()
    with tree(worker("slow", RestartType.TRANSIENT)) as rt:
        rt.services.extra["stop_gates"] = {"slow": gate}
        incarnations(rt, "slow")
        rt.tell("slow", Done())
        rt.wait_for(lambda: not rt.alive("slow"))  # dead to pykka, still in terminate()
        opener = threading.Timer(0.1, gate.set)  # clean-up ends well within the grace
        opener.start()
        try:
            rt.ask("root", CheckChildren(), timeout=5)
        finally:
            opener.cancel()
            gate.set()
        rt.wait_for(lambda: not rt.ask("root", WhichChildren(), timeout=5))
        assert rt.restarts("slow") == 0
        assert ("start", "slow", 2) not in events(rt)


def test_fault_plan_drop_and_probability_are_seeded() -> None:
    def fired_pings(seed: int) -> list[int]:
        rule = FaultRule(actor="a", action=FaultAction.DROP, probability=0.5, times=None)
        with tree(worker("a"), faults=FaultPlan([rule], seed=seed)) as rt:
            for n in range(40):
                rt.tell("a", Ping(n=n))
            rt.wait_for(lambda: rt.registry.entry("a").mailbox_depth() == 0)  # type: ignore[union-attr]
            seen: list[int] = rt.state("a")["seen"]
            return seen

    first, again, other = fired_pings(1), fired_pings(1), fired_pings(2)
    assert first == again
    assert first != other
    assert 0 < len(first) < 40


def test_a_restarted_child_reloads_its_checkpoint(tmp_path: Any) -> None:
    from storage import Checkpoints, Store
    from tests.unit.supervision_actors import Increment

    spec = SupervisorSpec(children=(ChildSpec(id="counter", actor="counter"),))
    with Store.open(tmp_path / "data") as store:
        checkpoints = Checkpoints(store)
        with Runtime(spec, actor_types=TYPES, clock=ManualClock(), checkpoints=checkpoints) as rt:
            assert [rt.ask("counter", Increment()) for _ in range(3)] == [1, 2, 3]
            rt.tell("counter", Boom())
            rt.wait_for(lambda: rt.restarts("counter") == 1)
            assert rt.state("counter") == {"n": 3}
            assert rt.ask("counter", Increment()) == 4
        # a new runtime on the same store (a daemon restart) starts from the checkpoint too
        with Runtime(spec, actor_types=TYPES, clock=ManualClock(), checkpoints=checkpoints) as rt:
            assert rt.state("counter") == {"n": 4}


def test_an_unreadable_checkpoint_is_reported_not_a_restart_loop(tmp_path: Any) -> None:
    import lmdb

    from storage import Checkpoints, Store
    from storage.checkpoints import checkpoint_key

    spec = SupervisorSpec(children=(ChildSpec(id="counter", actor="counter"),))
    Store.open(tmp_path / "data").close()
    with lmdb.open(str(tmp_path / "data"), max_dbs=16) as env:
        db = env.open_db(b"checkpoints")
        with env.begin(write=True) as txn:
            txn.put(checkpoint_key("counter"), b"\xc1junk", db=db)
    with Store.open(tmp_path / "data") as store:
        checkpoints = Checkpoints(store)
        with Runtime(spec, actor_types=TYPES, clock=ManualClock(), checkpoints=checkpoints) as rt:
            assert rt.state("counter") == {"n": 0}
            assert rt.restarts("counter") == 0
            error = rt.registry.entry("counter").last_error  # type: ignore[union-attr]
            assert "checkpoint unreadable" in error and "checkpoints" in error


def test_a_message_sent_during_start_up_is_not_lost() -> None:
    children = tuple(ChildSpec(id=f"early-{n}", actor="early") for n in range(20))
    with tree(*children) as rt:
        for n in range(20):
            rt.wait_for(lambda n=n: rt.state(f"early-{n}")["seen"] == [1], timeout=5)
        assert rt.registry.dead_letters == 0
