"""Pooled actors (ADR 0015): many actors on a few threads, each still one actor: its own
mailbox, restarts, asks answered, one message at a time, and no actor starving another."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pykka
import pytest
from pykka._envelope import Envelope

from protocol.messages import StartChild
from protocol.supervision import (
    ChildSpec,
    FaultAction,
    FaultRule,
    RestartType,
)
from supervision import FaultPlan, SupervisedActor
from supervision.dispatcher import Dispatcher, PooledInbox
from supervision.threads import ActorThreads
from tests.unit.supervision_actors import Boom, Done, EarlyBird, Ping, Worker
from tests.unit.test_supervision import tree

pytestmark = pytest.mark.timeout(30)


class PooledWorker(Worker):
    pooled = True


class PooledEarlyBird(EarlyBird):
    pooled = True


class Remembered(PooledWorker):
    """A pooled worker that sets itself a nudge an hour away when it starts, leaves a weak
    reference to itself in ``extra["remembered"]``, and answers ``Ping(n)`` with n > 0 by
    sending itself ``Ping(n - 1)`` a second later (a ticking actor)."""

    def init(self) -> None:
        super().init()
        self.services.extra.setdefault("remembered", []).append(weakref.ref(self))
        self.send_later(3600.0, self.name, Ping(n=0))

    def handle(self, message: Any) -> Any:
        if isinstance(message, Ping) and message.n > 0:
            self.send_later(1.0, self.name, Ping(n=message.n - 1))
        return super().handle(message)


TYPES: dict[str, type[SupervisedActor]] = {
    "worker": PooledWorker,
    "early": PooledEarlyBird,
    "remembered": Remembered,
}


def pooled(*children: ChildSpec, size: int, faults: FaultPlan | None = None) -> Any:
    return tree(*children, faults=faults, actor_types=TYPES, pooled_threads=size)


def worker(child_id: str, restart: RestartType = RestartType.PERMANENT) -> ChildSpec:
    return ChildSpec(id=child_id, actor="worker", restart=restart)


def test_two_hundred_actors_run_on_two_threads_and_each_answers_as_itself() -> None:
    before = set(threading.enumerate())
    with pooled(size=2) as rt:
        names = [f"w{n}" for n in range(200)]
        for name in names:
            assert rt.ask("root", StartChild(spec=worker(name))).started
        for n, name in enumerate(names):
            rt.tell(name, Ping(n=n))
        assert [rt.ask(name, Ping(n=-1)) for name in names] == [1] * 200
        assert [rt.state(name)["seen"] for name in names] == [[n, -1] for n in range(200)]
        entry = rt.registry.entry("w0")
        assert entry is not None and entry.mailbox_depth() == 0  # as metrics read it
        # the root supervisor's thread and the dispatcher's two: no thread per worker
        assert rt.services.threads.running() == ["pooled#0", "pooled#1", "root"]
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []


def test_a_pooled_actor_that_crashes_is_restarted_and_its_asker_gets_the_error() -> None:
    with pooled(worker("a"), worker("b"), size=1) as rt:
        with pytest.raises(RuntimeError, match="boom"):
            rt.ask("a", Boom())
        rt.wait_for(lambda: rt.ask("a", Ping()) == 2, timeout=5)
        rt.tell("b", Boom(text="told"))  # a crash on a tell: no asker, the supervisor sees it
        rt.wait_for(lambda: rt.ask("b", Ping()) == 2, timeout=5)
        assert rt.restarts("a") == 1 and rt.restarts("b") == 1


def test_a_busy_actor_yields_the_thread_after_its_burst() -> None:
    """Two hundred slow messages to ``a`` (10 ms each) do not delay ``b`` on the one thread:
    ``a`` is queued behind ``b`` after each burst of eight, so ``b`` answers while most of
    ``a``'s messages still wait (handled to the end first, none would)."""
    slow = FaultRule(
        actor="a", message="test_ping", action=FaultAction.DELAY, delay_s=0.01, times=None
    )
    with pooled(worker("a"), worker("b"), size=1, faults=FaultPlan([slow])) as rt:
        for n in range(200):
            rt.tell("a", Ping(n=n))
        assert rt.ask("b", Ping(), timeout=20) == 1
        entry = rt.registry.entry("a")
        assert entry is not None and entry.mailbox_depth() > 100  # answered amid a's burst
        rt.wait_for(lambda: len(rt.state("a")["seen"]) == 200, timeout=20)


def test_a_message_an_actor_sends_itself_while_it_starts_is_handled_once() -> None:
    with pooled(ChildSpec(id="bird", actor="early"), size=1) as rt:
        rt.wait_for(lambda: rt.state("bird")["seen"] == [1], timeout=5)


def test_asks_that_reach_a_stopped_actor_are_answered_with_actor_dead() -> None:
    """A message can pass ``tell``'s liveness check just before the actor stops: one that lands
    while the actor stops, and one after its mailbox was emptied, each get ``ActorDeadError``
    instead of waiting for ever."""
    gate = threading.Event()
    with pooled(size=1) as rt:
        assert rt.ask("root", StartChild(spec=worker("w", RestartType.TRANSIENT))).started
        entry = rt.wait_for(lambda: rt.registry.entry("w"))
        assert entry.ref is not None
        ref = entry.ref
        rt.services.extra["stop_gates"] = {"w": gate}
        rt.tell("w", Done())  # finishes: its clean-up waits at the gate, on the one thread
        rt.wait_for(lambda: not ref.is_alive(), timeout=5)
        during = racing_ask(ref)
        gate.set()
        with pytest.raises(pykka.ActorDeadError):
            during.get(timeout=5)
        after = racing_ask(ref)
        with pytest.raises(pykka.ActorDeadError):
            after.get(timeout=5)


def racing_ask(ref: pykka.ActorRef[Any]) -> pykka.Future[Any]:
    """An ask put in the mailbox as if it had passed the liveness check just before a stop."""
    future: pykka.Future[Any] = pykka.ThreadingFuture()
    ref.actor_inbox.put(Envelope(Ping(), reply_to=future))
    return future


def test_a_closed_dispatcher_ends_its_threads_and_takes_no_more_actors() -> None:
    threads = ActorThreads(idle_s=30.0)
    dispatcher = Dispatcher(threads, size=3, name="d")
    ran = threading.Event()

    class Once:
        def run_slice(self, budget: int) -> bool:
            ran.set()
            return False

    dispatcher.submit(Once())
    assert ran.wait(5)
    assert threads.running() == ["d#0", "d#1", "d#2"]
    dispatcher.close()
    assert threads.close(timeout=5) == []
    with pytest.raises(RuntimeError, match="closed"):
        dispatcher.submit(Once())


def test_an_inbox_queues_its_actor_once_however_many_messages_arrive() -> None:
    woken: list[int] = []
    inbox = PooledInbox(lambda: woken.append(1))
    inbox.put("a")  # the start is still pending: it will take the messages
    assert woken == []
    assert inbox.take() == "a" and inbox.take() is None  # idle now
    inbox.put("b")
    inbox.put("c")
    assert woken == [1]
    assert inbox.pending() and inbox.take() == "b" and inbox.take() == "c"
    assert not inbox.pending()
    inbox.put("d")
    assert woken == [1, 1]


def test_a_dispatcher_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        Dispatcher(ActorThreads(), size=0, name="none")


@contextmanager
def collector_off() -> Iterator[None]:
    """Only reference counting frees objects meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def test_a_finished_pooled_actor_is_freed_at_once_and_its_timers_let_go() -> None:
    """ADR 0023: a pooled actor's mailbox held it in a reference cycle, and its timers held
    their messages until their deadlines, so a burst's finished resolvers waited for the
    garbage collector, whose young collections walked them again and again. Once it has
    stopped, nothing holds it: reference counting frees it, and its timers are cancelled."""
    with pooled(size=1) as rt:
        before = rt.services.clock.pending()
        spec = ChildSpec(id="r", actor="remembered", restart=RestartType.TRANSIENT)
        assert rt.ask("root", StartChild(spec=spec)).started
        [alive] = rt.wait_for(lambda: rt.services.extra.get("remembered"))
        assert rt.services.clock.pending() == before + 1
        with collector_off():
            rt.tell("r", Done())
            rt.wait_for(lambda: alive() is None, timeout=5)
        assert rt.services.clock.pending() == before


def test_a_ticking_actor_keeps_only_its_waiting_timers() -> None:
    with pooled(size=1) as rt:
        assert rt.ask("root", StartChild(spec=ChildSpec(id="r", actor="remembered"))).started
        [alive] = rt.wait_for(lambda: rt.services.extra.get("remembered"))
        rt.tell("r", Ping(n=200))
        for ticks in range(1, 201):
            rt.wait_for(lambda: len(rt.state("r")["seen"]) == ticks, timeout=5)  # noqa: B023
            rt.services.clock.advance(1.0)
        rt.wait_for(lambda: rt.state("r")["seen"][-1] == 0, timeout=5)
        actor = alive()
        assert isinstance(actor, Remembered)
        assert 1 <= len(actor._timers) < 64  # spent ones are cleared out as it goes
        assert sum(timer.active() for timer in actor._timers) == 1  # the hour's nudge
