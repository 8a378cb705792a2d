"""Concurrent single calls become batches; each caller gets its own answer or its own error."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sources.coalesce import Coalescer
from supervision import wait_for

pytestmark = pytest.mark.timeout(30)
FAIL = 10**6


class Backend:
    """Squares numbers; a negative number is an item error; FAIL fails its whole batch.

    The first batch blocks until ``release`` is set, so that callers pile up behind it.
    """

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            self.release.wait(10)
        if FAIL in items:
            raise ConnectionError("node down")
        return [ValueError(f"negative {n}") if n < 0 else n * n for n in items]


def pile_up(backend: Backend, reads: Coalescer[int, int], callers: int) -> list[int]:
    """``callers`` threads call ``reads`` for 1..callers while the first batch is held."""
    with ThreadPoolExecutor(max_workers=callers) as pool:
        first = pool.submit(reads.call, 1)
        assert backend.entered.wait(5)
        rest = [pool.submit(reads.call, n) for n in range(2, callers + 1)]
        wait_for(lambda: reads.queued == callers - 1, timeout=10)  # all behind the held batch
        backend.release.set()
        return [f.result(5) for f in [first, *rest]]


def test_callers_arriving_during_a_batch_go_out_together_as_the_next() -> None:
    backend = Backend()
    reads: Coalescer[int, int] = Coalescer(backend, max_batch=100, timeout_s=10)
    assert pile_up(backend, reads, 50) == [n * n for n in range(1, 51)]
    assert [sorted(b) for b in backend.batches] == [[1], list(range(2, 51))]  # 2 trips, not 50


def test_an_item_error_reaches_only_its_caller() -> None:
    backend = Backend()
    backend.release.set()
    reads: Coalescer[int, int] = Coalescer(backend)
    with pytest.raises(ValueError, match="negative -2"):
        reads.call(-2)
    assert reads.call(3) == 9


def test_a_failed_batch_reaches_every_caller_of_it_and_the_next_one_works() -> None:
    backend = Backend()
    backend.release.set()
    reads: Coalescer[int, int] = Coalescer(backend)
    with pytest.raises(ConnectionError, match="node down"):
        reads.call(FAIL)
    assert reads.call(4) == 16


def test_batches_respect_the_maximum_size() -> None:
    backend = Backend()
    reads: Coalescer[int, int] = Coalescer(backend, max_batch=7, timeout_s=10)
    assert pile_up(backend, reads, 30) == [n * n for n in range(1, 31)]
    assert max(len(b) for b in backend.batches) <= 7


def test_a_wrong_number_of_results_is_an_error_not_a_guess() -> None:
    reads: Coalescer[int, int] = Coalescer(lambda items: [1, 2, 3])
    with pytest.raises(RuntimeError, match="returned 3 results"):
        reads.call(5)


def test_a_caller_behind_a_leader_that_never_returns_gives_up() -> None:
    stuck = threading.Event()
    entered = threading.Event()

    def hang(items: list[int]) -> list[int]:
        entered.set()
        stuck.wait(10)
        return list(items)

    reads: Coalescer[int, int] = Coalescer(hang, timeout_s=0.3)
    with ThreadPoolExecutor(max_workers=2) as pool:
        leader = pool.submit(reads.call, 1)
        assert entered.wait(5)
        with pytest.raises(TimeoutError, match="no batch answered"):
            reads.call(2)
        stuck.set()
        assert leader.result(5) == 1


def test_a_lingering_leader_sends_the_callers_of_the_same_moment_in_one_round() -> None:
    batches: list[list[int]] = []

    def square(items: list[int]) -> list[int | Exception]:
        batches.append(list(items))
        return [n * n for n in items]

    reads: Coalescer[int, int] = Coalescer(square, linger_s=0.5)
    start = threading.Barrier(6)

    def call(n: int) -> int:
        start.wait(5)
        return reads.call(n)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(call, range(1, 7)))
    assert results == [n * n for n in range(1, 7)]
    assert len(batches) == 1 and sorted(batches[0]) == list(range(1, 7))


@pytest.mark.timeout(10)
def test_a_full_round_does_not_linger() -> None:
    """A batch already full goes out at once: lingering an hour would fail the timeout."""
    reads: Coalescer[int, int] = Coalescer(lambda items: items, max_batch=1, linger_s=3600.0)
    assert reads.call(7) == 7
