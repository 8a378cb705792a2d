"""storage under concurrency: group commit, map growth with readers in flight, the resize gate."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from protocol.records import AuditEntry, Cursor
from storage import Gate, StorageError, Store, StoreFullError, Txn
from storage.errors import StoredValueError
from storage.group_commit import GroupCommit, Op
from supervision import wait_for

WAIT = 20.0  # generous bound on every wait; a healthy run takes milliseconds


def cursor(n: int, payload: int = 0) -> Cursor:
    return Cursor(chain="c", block_number=n, block_hash="0x" + "ab" * payload)


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive(), "a thread did not finish in time"


class Boom(Exception):
    pass


# --- group commit ----------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_concurrent_writers_share_one_transaction_and_fail_alone(tmp_path: Path) -> None:
    writers = 40
    with Store.open(tmp_path) as store:
        started, release = threading.Event(), threading.Event()

        def slow(txn: Txn) -> str:
            txn.put("jobs", b"slow", cursor(0))
            started.set()
            assert release.wait(WAIT)
            return "slow"

        results: dict[int, object] = {}

        def writer(i: int) -> None:
            def fn(txn: Txn) -> int:
                txn.put("jobs", b"w%03d" % i, cursor(i))
                txn.audit(AuditEntry(ts=0.0, actor=f"w{i}", action="wrote"))
                if i % 7 == 3:
                    raise Boom(f"writer {i} fails")
                return i

            try:
                results[i] = store.write(fn)
            except Boom as exc:
                results[i] = exc

        before = store.transactions
        slow_result: list[str] = []
        leader = threading.Thread(target=lambda: slow_result.append(store.write(slow)))
        leader.start()
        assert started.wait(WAIT)
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
        for thread in threads:
            thread.start()
        assert store.wait_queued_writes(writers, WAIT)  # all queued behind the slow leader
        assert not results  # nobody returned before a commit
        release.set()
        for thread in [leader, *threads]:
            thread.join(WAIT)
            assert not thread.is_alive()

        failing = {i for i in range(writers) if i % 7 == 3}
        assert slow_result == ["slow"]
        for i in range(writers):
            if i in failing:
                assert isinstance(results[i], Boom) and str(results[i]) == f"writer {i} fails"
            else:
                assert results[i] == i
        # the slow write, then every queued writer in ONE more transaction
        assert store.transactions - before == 2
        assert store.writes >= 1 + writers - len(failing)

    with Store.open(tmp_path) as store:  # committed means on disk
        keys = {key for key, _ in store.items("jobs")}
        assert keys == {b"slow"} | {b"w%03d" % i for i in range(writers) if i not in failing}
        actors = [e.actor for _, e in store.items("audit", expect=AuditEntry)]
        assert sorted(actors) == sorted(f"w{i}" for i in range(writers) if i not in failing)
        assert store.count("audit") == writers - len(failing)  # failed ones left no entry


@pytest.mark.timeout(60)
def test_the_lead_passes_to_the_oldest_waiting_writer_who_takes_the_whole_queue() -> None:
    """The leader wakes only its batch's callers; the oldest waiter leads the next batch."""
    held = threading.Event()
    entered = threading.Event()
    batches: list[tuple[str, list[int]]] = []

    def commit_batch(ops: list[Op[Any]]) -> None:
        batches.append((threading.current_thread().name, [op.fn(None) for op in ops]))
        if len(batches) == 1:
            entered.set()
            assert held.wait(WAIT)
        for op, value in zip(ops, batches[-1][1], strict=True):
            op.set_value(value)
            op.finish()

    group = GroupCommit(commit_batch)
    results: dict[int, int] = {}

    def writer(n: int) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: results.__setitem__(n, group.submit(lambda _: n)),
            name=f"w{n}",
            daemon=True,
        )
        thread.start()
        return thread

    threads = [writer(0)]
    assert entered.wait(WAIT)  # w0 leads, and its batch is held
    for n in (1, 2, 3):
        threads.append(writer(n))
        assert group.wait_queued(n, WAIT)  # queued in this order
    held.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert results == {0: 0, 1: 1, 2: 2, 3: 3}
    assert batches == [("w0", [0]), ("w1", [1, 2, 3])]


def held_commit(
    held: threading.Event, entered: threading.Event, done: Callable[[], None] = lambda: None
) -> Callable[[list[Op[Any]]], None]:
    """A committer that says it ``entered``, waits until ``held`` is set, then commits."""

    def commit_batch(ops: list[Op[Any]]) -> None:
        entered.set()
        assert held.wait(WAIT)
        for op in ops:
            op.set_value(op.fn(None))
            op.finish()
        done()

    return commit_batch


@pytest.mark.timeout(60)
def test_a_stalled_commit_fails_its_waiters_in_time_and_the_group_goes_on() -> None:
    """A leader stuck in its commit (a stalled disk) does not hang every other writer: after
    ``wait_s`` they fail with a ``StorageError``, ``exclusive`` too; once the disk answers,
    writes go through again."""
    held, entered = threading.Event(), threading.Event()
    group = GroupCommit(held_commit(held, entered), wait_s=0.2)
    stuck = threading.Thread(target=lambda: group.submit(lambda _: 0), daemon=True)
    stuck.start()
    assert entered.wait(WAIT)
    with pytest.raises(StorageError, match=r"no commit within 0\.2 s"):
        group.submit(lambda _: 1)
    with pytest.raises(StorageError, match=r"has not finished within 0\.2 s"), group.exclusive():
        pass
    held.set()
    stuck.join(WAIT)
    assert not stuck.is_alive()
    assert group.submit(lambda _: 2) == 2
    assert group.queued == 0


@pytest.mark.timeout(60)
def test_exclusive_waits_for_a_lone_writer_and_is_woken_when_it_ends() -> None:
    """A lone writer leads without waking anyone; a waiting ``exclusive`` still gets the lead."""
    held, entered = threading.Event(), threading.Event()
    order: list[str] = []
    group = GroupCommit(held_commit(held, entered, lambda: order.append("write")))
    writer = threading.Thread(target=lambda: group.submit(lambda _: 1), daemon=True)
    writer.start()
    assert entered.wait(WAIT)

    def close() -> None:
        with group.exclusive():
            order.append("exclusive")

    closer = threading.Thread(target=close, daemon=True)
    closer.start()
    wait_for(lambda: group._waiters == 1, timeout=WAIT)  # waiting for the lead, in exclusive()
    assert closer.is_alive() and order == []  # held behind the writer's batch
    held.set()
    for thread in (writer, closer):
        thread.join(WAIT)
        assert not thread.is_alive()
    assert order == ["write", "exclusive"]
    assert group.submit(lambda _: 2) == 2  # the lead was given back after exclusive


@pytest.mark.timeout(60)
def test_many_threads_writing_freely_all_land(tmp_path: Path) -> None:
    threads, per_thread = 16, 40
    errors: list[BaseException] = []
    with Store.open(tmp_path) as store:

        def worker(t: int) -> None:
            try:
                for i in range(per_thread):
                    store.put("txs", b"%02d:%03d" % (t, i), cursor(i))
                    if i % 10 == 0:
                        assert store.get("txs", b"%02d:%03d" % (t, i), Cursor) == cursor(i)
            except BaseException as exc:
                errors.append(exc)

        run_threads([partial(worker, t) for t in range(threads)])
        assert errors == []
        stats = store.stats()
        assert stats.entries["txs"] == threads * per_thread
        assert stats.writes == threads * per_thread + 1  # + the schema stamp
        assert stats.transactions <= stats.writes
    with Store.open(tmp_path) as store:
        assert store.count("txs") == threads * per_thread


@pytest.mark.timeout(30)
def test_write_many_is_one_transaction_with_isolated_failures(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        before = store.transactions

        def put(i: int) -> Callable[[Txn], int]:
            def fn(txn: Txn) -> int:
                txn.put("markets", b"m%03d" % i, cursor(i))
                if i == 5:
                    raise Boom("five")
                return i

            return fn

        results = store.write_many([put(i) for i in range(100)])
        assert store.transactions - before == 1
        assert results[:5] == [0, 1, 2, 3, 4]
        assert isinstance(results[5], Boom)
        assert results[6:] == list(range(6, 100))
        assert store.count("markets") == 99
        assert store.get("markets", b"m005") is None
        assert store.write_many([]) == []


@pytest.mark.timeout(30)
def test_base_exception_aborts_the_batch_and_the_store_goes_on(tmp_path: Path) -> None:
    class Stop(BaseException):
        pass

    def stop(txn: Txn) -> None:
        txn.put("jobs", b"stop", cursor(0))
        raise Stop

    with Store.open(tmp_path) as store:
        with pytest.raises(Stop):
            store.write(stop)
        with pytest.raises(Stop):
            store.write_many([lambda t: t.put("jobs", b"a", cursor(1)), stop])
        assert store.count("jobs") == 0
        store.put("jobs", b"after", cursor(2))
        assert store.count("jobs") == 1


# --- map growth --------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_map_grows_under_load_with_readers_in_flight(tmp_path: Path) -> None:
    stop = threading.Event()
    reader_errors: list[BaseException] = []
    reads = [0]
    with Store.open(tmp_path, map_size=1 << 20, max_map_size=1 << 30) as store:
        store.put("proofs", b"anchor", cursor(0))

        def reader() -> None:
            try:
                while not stop.is_set():
                    assert store.get("proofs", b"anchor", Cursor) == cursor(0)
                    for _ in store.items("proofs", b"batch:00"):
                        pass
                    reads[0] += 1
            except BaseException as exc:
                reader_errors.append(exc)

        readers = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
        for thread in readers:
            thread.start()

        def batch(b: int) -> Callable[[Txn], None]:
            def fn(txn: Txn) -> None:
                for i in range(50):
                    txn.put("proofs", b"batch:%03d:%02d" % (b, i), cursor(i, payload=1000))

            return fn

        try:
            for b in range(0, 200, 4):  # 200 x 50 values of ~2 KiB: ~20 MiB of data
                results = store.write_many([batch(b + k) for k in range(4)])
                assert results == [None] * 4
        finally:
            stop.set()
            for thread in readers:
                thread.join(WAIT)
        assert reader_errors == []
        assert reads[0] > 0
        stats = store.stats()
        assert stats.map_growths >= 4
        assert stats.map_size >= 16 << 20
        assert stats.entries["proofs"] == 200 * 50 + 1
    with Store.open(tmp_path, map_size=1 << 20) as store:
        assert store.count("proofs") == 200 * 50 + 1
        assert store.get("proofs", b"batch:199:49", Cursor) == cursor(49, payload=1000)


@pytest.mark.timeout(30)
def test_one_value_bigger_than_the_map(tmp_path: Path) -> None:
    with Store.open(tmp_path, map_size=1 << 20, max_map_size=64 << 20) as store:
        store.put("proofs", b"big", cursor(1, payload=1_500_000))  # ~3 MiB
        assert store.stats().map_growths >= 2
        assert store.get("proofs", b"big", Cursor) == cursor(1, payload=1_500_000)


@pytest.mark.timeout(60)
def test_full_at_max_map_size_is_a_clear_error_and_nothing_is_half_written(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path, map_size=1 << 20, max_map_size=2 << 20) as store:

        def fill(txn: Txn) -> None:
            for i in range(2000):
                txn.put("proofs", b"f%05d" % i, cursor(i, payload=1000))

        with pytest.raises(StoreFullError, match=r"is full.*max_map_size"):
            store.write(fill)
        assert store.count("proofs") == 0
        store.put("proofs", b"small", cursor(1))  # still usable
        # in a batch, the write that cannot fit fails alone
        results = store.write_many([fill, lambda t: t.put("jobs", b"j", cursor(2))])
        assert isinstance(results[0], StoreFullError)
        assert results[1] is None
        assert store.get("jobs", b"j", Cursor) == cursor(2)


# --- the gate ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_gate_exclusive_waits_for_shared_and_holds_new_ones_back() -> None:
    gate = Gate()
    order: list[str] = []
    in_shared, leave_shared = threading.Event(), threading.Event()
    exclusive_waiting = threading.Event()

    def holder() -> None:
        with gate.shared():
            order.append("shared-1 in")
            in_shared.set()
            assert leave_shared.wait(WAIT)
            order.append("shared-1 out")

    def resizer() -> None:
        exclusive_waiting.set()
        with gate.exclusive():
            order.append("exclusive")

    def late_reader() -> None:
        with gate.shared():
            order.append("shared-2")

    first = threading.Thread(target=holder)
    first.start()
    assert in_shared.wait(WAIT)
    second = threading.Thread(target=resizer)
    second.start()
    assert exclusive_waiting.wait(WAIT)
    # wait until the resizer is parked in the gate, then add a reader behind it
    with gate._cond:
        assert gate._cond.wait_for(lambda: gate._waiting == 1, WAIT)
    third = threading.Thread(target=late_reader)
    third.start()
    leave_shared.set()
    for thread in (first, second, third):
        thread.join(WAIT)
        assert not thread.is_alive()
    assert order == ["shared-1 in", "shared-1 out", "exclusive", "shared-2"]
    assert gate.open_transactions == 0


@pytest.mark.timeout(30)
def test_gate_guards() -> None:
    gate = Gate(exclusive_timeout=0.05)
    with gate.shared(), pytest.raises(RuntimeError, match="deadlock"), gate.exclusive():
        pass
    release = threading.Event()
    entered = threading.Event()

    def hold() -> None:
        with gate.shared():
            entered.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(WAIT)
    with pytest.raises(StorageError, match="still open"), gate.exclusive():
        pass
    with gate.shared():  # a timed-out resize does not block readers
        pass
    release.set()
    holder.join(WAIT)
    with gate.exclusive():
        pass


@pytest.mark.timeout(30)
def test_reads_in_a_write_function_see_committed_state(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.put("jobs", b"k", cursor(1))

        def fn(txn: Txn) -> tuple[int, int]:
            txn.put("jobs", b"k", cursor(2))
            committed = store.get("jobs", b"k", Cursor)
            mine = txn.get("jobs", b"k", Cursor)
            assert committed is not None and mine is not None
            return committed.block_number, mine.block_number

        assert store.write(fn) == (1, 2)


@pytest.mark.timeout(10)
def test_stored_value_error_is_a_storage_error() -> None:
    assert issubclass(StoredValueError, StorageError)


@pytest.mark.timeout(15)
def test_aborts_are_not_starved_by_busy_readers(tmp_path: Path) -> None:
    """py-lmdb 3.0's abort() can wait seconds behind looping readers; the gate prevents it.

    With the fix this takes well under a second; without it, about 20 s here (hence the timeout).
    """
    stop = threading.Event()
    errors: list[BaseException] = []
    with Store.open(tmp_path) as store:
        store.put("jobs", b"k", cursor(1))

        def reader() -> None:
            try:
                while not stop.is_set():
                    store.get("jobs", b"k")
            except BaseException as exc:
                errors.append(exc)

        readers = [threading.Thread(target=reader, daemon=True) for _ in range(4)]
        for thread in readers:
            thread.start()

        def fail(txn: Txn) -> None:
            txn.put("jobs", b"k", cursor(2))
            raise Boom

        try:
            for _ in range(100):
                with pytest.raises(Boom):
                    store.write(fail)  # a lone write: top-level abort
                results = store.write_many([fail, lambda t: None])  # a child abort
                assert isinstance(results[0], Boom)
        finally:
            stop.set()
            for thread in readers:
                thread.join(WAIT)
        assert errors == []
        assert store.get("jobs", b"k", Cursor) == cursor(1)
