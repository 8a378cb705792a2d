"""``sources.batcher.Batcher``: items from many threads go out in batches on its own thread, and
every item's result, or its exception, reaches that item's callback exactly once."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from sources.batcher import Batcher
from supervision.runtime import wait_for

pytestmark = pytest.mark.timeout(20)


class Answers:
    """What each item's callback got, in the order it came."""

    def __init__(self) -> None:
        self.got: dict[int, list[object]] = {}
        self._lock = threading.Lock()

    def to(self, item: int) -> object:
        def deliver(result: object) -> None:
            with self._lock:
                self.got.setdefault(item, []).append(result)

        return deliver

    def count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self.got.values())


def test_items_from_many_threads_are_answered_each_with_its_own_result_in_batches() -> None:
    gate = threading.Event()
    sizes: list[int] = []

    def run(items: list[int]) -> Sequence[int | Exception]:
        gate.wait(5)  # the first batch holds the thread: the others queue behind it
        sizes.append(len(items))
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(run, max_batch=50)
    answers = Answers()
    threads = [
        threading.Thread(target=lambda n=n: [batcher.submit(i, answers.to(i)) for i in n])
        for n in (range(0, 100), range(100, 200))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        gate.set()
        wait_for(lambda: answers.count() == 200, timeout=5)
    finally:
        batcher.close()
    assert answers.got == {i: [i * 10] for i in range(200)}
    assert sum(sizes) == 200 and max(sizes) == 50 and len(sizes) < 200
    assert batcher.batches == len(sizes)


def test_errors_reach_the_items_they_belong_to_and_a_bad_callback_harms_no_other() -> None:
    held = threading.Event()
    release = threading.Event()

    def run(items: list[int]) -> Sequence[int | Exception]:
        if items == [0]:  # the plug: holds the thread while a batch queues behind it
            held.set()
            release.wait(5)
            return [0]
        if 13 in items:
            raise OSError("the node is down")
        if 7 in items:
            return [1]  # too few results
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    batcher: Batcher[int, int] = Batcher(run)
    answers = Answers()

    def explode(result: object) -> None:
        raise RuntimeError("this callback is broken")

    try:
        for batch in ([1, 2], [13, 4], [7, 8]):
            held.clear()
            release.clear()
            batcher.submit(0, answers.to(0))
            assert held.wait(5)
            done = answers.count() + 1 + len(batch)
            batcher.submit(99, explode)
            for item in batch:
                batcher.submit(item, answers.to(item))
            release.set()
            wait_for(lambda done=done: answers.count() == done, timeout=5)
    finally:
        batcher.close()
    got = {item: results[0] for item, results in answers.got.items()}
    assert isinstance(got[1], ValueError) and got[2] == 2  # per item
    assert isinstance(got[13], OSError) and isinstance(got[4], OSError)  # the whole batch
    assert "returned 1 results" in str(got[7]) and isinstance(got[8], RuntimeError)
    assert answers.got[0] == [0, 0, 0]
    assert all(len(results) == 1 for item, results in answers.got.items() if item)


def test_close_answers_what_is_still_queued_and_refuses_more() -> None:
    gate = threading.Event()
    started = threading.Event()

    def run(items: list[int]) -> Sequence[int | Exception]:
        started.set()
        gate.wait(5)
        return list(items)

    batcher: Batcher[int, int] = Batcher(run, max_batch=1, join_s=5)
    answers = Answers()
    batcher.submit(1, answers.to(1))
    assert started.wait(5)  # item 1 is in hand; 2 and 3 wait in the queue
    batcher.submit(2, answers.to(2))
    batcher.submit(3, answers.to(3))
    closing = threading.Thread(target=batcher.close)
    closing.start()
    wait_for(lambda: batcher._closed, timeout=5)
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(4, answers.to(4))
    gate.set()
    closing.join(5)
    assert not closing.is_alive()
    assert answers.got[1] == [1]
    for item in (2, 3):
        (closed,) = answers.got[item]
        assert isinstance(closed, RuntimeError) and "closed before" in str(closed)
    assert 4 not in answers.got
