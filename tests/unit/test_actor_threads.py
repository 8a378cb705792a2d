"""The reusable actor threads: reuse, no upper bound, idle expiry, close, and a raising loop."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator

import pykka
import pytest

from protocol.messages import StartChild
from protocol.supervision import Backoff, RestartType
from supervision import SupervisionError, wait_for
from supervision.threads import ActorThreads
from tests.unit.supervision_actors import Done, Worker, worker
from tests.unit.test_supervision import tree

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def threads() -> Iterator[ActorThreads]:
    pool = ActorThreads(idle_s=30.0)
    yield pool
    assert pool.close(timeout=5) == []


def recorder(seen: list[tuple[str, int]]) -> Callable[[], None]:
    def loop() -> None:
        current = threading.current_thread()
        seen.append((current.name, current.ident or 0))

    return loop


def blocker(gate: threading.Event, started: threading.Semaphore) -> Callable[[], None]:
    def loop() -> None:
        started.release()
        gate.wait(10)

    return loop


def test_a_finished_loop_gives_its_thread_to_the_next(threads: ActorThreads) -> None:
    seen: list[tuple[str, int]] = []
    threads.run(recorder(seen), "a")
    wait_for(lambda: threads.idle() == 1, timeout=5)
    threads.run(recorder(seen), "b")
    wait_for(lambda: threads.idle() == 1 and len(seen) == 2, timeout=5)
    assert threads.started == 1
    assert [name for name, _ in seen] == ["actor:a", "actor:b"]
    assert seen[0][1] == seen[1][1]


def test_every_blocking_loop_gets_a_thread_at_once(threads: ActorThreads) -> None:
    gate, started = threading.Event(), threading.Semaphore(0)
    for n in range(6):
        threads.run(blocker(gate, started), f"w{n}")
    for _ in range(6):  # no loop waits for another one's thread: all six run together
        assert started.acquire(timeout=5)
    assert threads.running() == [f"w{n}" for n in range(6)]
    assert threads.started == 6
    gate.set()
    wait_for(lambda: threads.idle() == 6 and threads.running() == [], timeout=5)


def test_a_thread_idle_for_idle_s_ends() -> None:
    pool = ActorThreads(idle_s=0.05)
    seen: list[tuple[str, int]] = []
    pool.run(recorder(seen), "a")
    wait_for(lambda: seen, timeout=5)
    ident = seen[0][1]
    wait_for(lambda: all(t.ident != ident for t in threading.enumerate()), timeout=5)
    assert pool.idle() == 0
    pool.run(recorder(seen), "b")  # a new thread takes the next loop
    wait_for(lambda: len(seen) == 2, timeout=5)
    assert pool.started == 2
    assert pool.close(timeout=5) == []


def test_workers_of_ended_threads_are_forgotten_as_new_threads_start() -> None:
    """Rounds of 50 loops at once, each round's threads ended by ``idle_s`` before the next:
    500 threads started, but the pool keeps at most twice a round's worth of workers (it
    prunes when its set has doubled, not on every start)."""
    pool = ActorThreads(idle_s=0.02)
    before = threading.active_count()
    for _ in range(10):
        gate, started = threading.Event(), threading.Semaphore(0)
        for n in range(50):
            pool.run(blocker(gate, started), f"w{n}")
        for _ in range(50):
            assert started.acquire(timeout=5)
        assert len(pool._workers) <= 100
        gate.set()
        wait_for(lambda: threading.active_count() <= before, timeout=5)  # all ended
    assert pool.started == 500
    assert pool.close(timeout=5) == []
    assert not pool._workers


def test_close_names_the_loops_still_running_and_ends_the_idle_threads() -> None:
    pool = ActorThreads(idle_s=30.0)
    gate, started = threading.Event(), threading.Semaphore(0)
    seen: list[tuple[str, int]] = []
    pool.run(recorder(seen), "quick")
    wait_for(lambda: pool.idle() == 1, timeout=5)
    pool.run(blocker(gate, started), "stuck")  # takes the idle thread
    pool.run(recorder(seen), "quick2")
    wait_for(lambda: pool.idle() == 1, timeout=5)
    assert started.acquire(timeout=5)
    stuck, idle = seen[0][1], seen[1][1]
    assert pool.close(timeout=0.05) == ["stuck"]
    assert pool.idle() == 0
    alive = lambda: {t.ident for t in threading.enumerate()}  # noqa: E731
    wait_for(lambda: idle not in alive(), timeout=5)  # told to end (the deadline had passed)
    assert stuck in alive()
    gate.set()
    assert pool.close(timeout=5) == []
    assert pool.running() == []


def test_after_close_a_loop_still_runs_on_a_thread_that_ends_with_it() -> None:
    pool = ActorThreads(idle_s=30.0)
    assert pool.close(timeout=1) == []
    seen: list[tuple[str, int]] = []
    pool.run(recorder(seen), "late")
    wait_for(lambda: seen, timeout=5)
    ident = seen[0][1]
    wait_for(lambda: all(t.ident != ident for t in threading.enumerate()), timeout=5)
    assert pool.idle() == 0 and pool.running() == []


def test_a_raising_loop_is_logged_and_its_thread_serves_on(
    threads: ActorThreads, caplog: pytest.LogCaptureFixture
) -> None:
    def bad() -> None:
        raise RuntimeError("loop broke")

    with caplog.at_level(logging.ERROR, logger="supervision.threads"):
        threads.run(bad, "bad")
        wait_for(lambda: threads.idle() == 1, timeout=5)
    assert "actor loop of bad raised" in caplog.text
    seen: list[tuple[str, int]] = []
    threads.run(recorder(seen), "next")
    wait_for(lambda: seen and threads.idle() == 1, timeout=5)
    assert threads.started == 1


def test_short_lived_actors_reuse_threads_and_stop_leaves_none() -> None:
    before = set(threading.enumerate())
    with tree(max_children=4) as rt:
        pool = rt.services.threads
        base = pool.started
        for n in range(25):
            cid = f"r{n}"
            assert rt.ask("root", StartChild(spec=worker(cid, RestartType.TRANSIENT))).started
            rt.tell(cid, Done())
            wait_for(lambda cid=cid: cid not in pool.running() and pool.idle() >= 1, timeout=5)
        assert pool.started - base == 1  # twenty-five resolvers' lifetimes on one thread
    assert [t for t in set(threading.enumerate()) - before if t.is_alive()] == []


def test_a_mailbox_is_a_c_queue_and_its_depth_is_counted() -> None:
    """pykka's ``_create_actor_inbox`` hook gives every actor a ``queue.SimpleQueue`` (ADR
    0011): if a pykka release drops the hook, this fails instead of a slower hand-off passing
    silently."""
    with tree(worker("slow")) as rt:
        entry = rt.registry.entry("slow")
        assert entry is not None and entry.ref is not None
        assert type(entry.ref.actor_inbox) is queue.SimpleQueue
        assert entry.mailbox_depth() == 0


def test_a_stop_names_an_actor_whose_thread_will_not_end() -> None:
    gate = threading.Event()
    with tree(worker("slow")) as rt:
        rt.services.extra["stop_gates"] = {"slow": gate}
        try:
            with pytest.raises(SupervisionError, match="slow"):
                rt.stop(timeout=0.2)
        finally:
            gate.set()
    # leaving the block stops again: the slow thread has ended by then, nothing is left
    assert rt.services.threads.close(timeout=5) == []


class _NoThreads(ActorThreads):
    """A process that may start no more threads."""

    def _spawn(self, thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")


def test_a_thread_that_cannot_start_fails_the_run_and_is_not_waited_for() -> None:
    pool = _NoThreads(idle_s=30.0)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        pool.run(lambda: None, "unlucky")
    assert pool.running() == [] and pool.started == 0
    assert pool.close(timeout=0.05) == []  # a stop is not held up by a loop that never ran


def test_an_actor_without_a_thread_is_a_failed_start_and_leaves_no_actor_behind() -> None:
    with tree(backoff=Backoff(initial_s=5, max_s=5)) as rt:
        pool, rt.services.threads = rt.services.threads, _NoThreads()
        try:
            reply = rt.ask("root", StartChild(spec=worker("r1", RestartType.TRANSIENT)))
            assert reply.started  # the supervisor took it on; its start crashed
            entry = rt.wait_for(lambda: rt.registry.entry("r1"))
            rt.wait_for(lambda: "can't start new thread" in (entry.last_error or ""))
            assert not rt.alive("r1")
            assert not [r for r in pykka.ActorRegistry.get_all() if r.actor_class is Worker]
        finally:
            rt.services.threads = pool


def test_close_returns_after_the_threads_of_loops_ending_meanwhile_have_ended() -> None:
    pool = ActorThreads(idle_s=30.0)
    gate, started = threading.Event(), threading.Semaphore(0)
    for n in range(4):
        pool.run(blocker(gate, started), f"w{n}")
    for _ in range(4):
        assert started.acquire(timeout=5)
    idents = {t.ident for t in threading.enumerate() if t.name.startswith("actor:w")}
    assert len(idents) == 4
    opener = threading.Timer(0.05, gate.set)  # the loops end while close waits for them
    opener.start()
    try:
        assert pool.close(timeout=5) == []
        assert not idents & {t.ident for t in threading.enumerate()}
    finally:
        opener.cancel()
        gate.set()
