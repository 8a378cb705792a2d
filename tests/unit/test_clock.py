"""SystemClock: timers on one thread, in due order; only an earlier timer wakes that thread."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator

import pytest

from supervision.clock import ManualClock, SystemClock

pytestmark = pytest.mark.timeout(30)
WAIT = 10.0


class CountingCondition(threading.Condition):
    """A condition that counts ``notify`` calls (the clock thread's wake-ups)."""

    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


@pytest.fixture
def clock() -> Iterator[SystemClock]:
    clock = SystemClock()
    try:
        yield clock
    finally:
        clock.stop()


def test_timers_fire_in_due_order_whatever_the_order_they_were_set(clock: SystemClock) -> None:
    fired: list[str] = []
    done = threading.Event()
    clock.call_later(0.3, lambda: (fired.append("late"), done.set()))
    clock.call_later(0.05, lambda: fired.append("early"))
    clock.call_later(0.15, lambda: fired.append("middle"))
    assert done.wait(WAIT)
    assert fired == ["early", "middle", "late"]


def test_a_cancelled_timer_does_not_fire(clock: SystemClock) -> None:
    fired: list[str] = []
    done = threading.Event()
    clock.call_later(0.05, lambda: fired.append("cancelled")).cancel()
    clock.call_later(0.1, lambda: (fired.append("kept"), done.set()))
    assert done.wait(WAIT)
    assert fired == ["kept"]


def test_only_a_timer_earlier_than_all_others_wakes_the_clock_thread(clock: SystemClock) -> None:
    counting = CountingCondition()
    clock._cond = counting  # before the first timer: the clock thread uses this one
    done = threading.Event()
    clock.call_later(60.0, lambda: None)
    for delay in range(61, 161):  # a burst of later timers: none of them wakes the thread
        clock.call_later(float(delay), lambda: None)
    assert counting.notified == 1
    clock.call_later(0.05, done.set)  # earlier than all: it must wake the thread, and fire
    assert counting.notified == 2
    assert done.wait(WAIT)


def test_after_stop_timers_are_cancelled_at_once(clock: SystemClock) -> None:
    clock.stop()
    assert clock.call_later(0.0, lambda: None).cancelled


class Callback:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_a_cancelled_timer_lets_go_of_its_callback_at_once() -> None:
    """A cancelled timer waits in the heap until its time, but not what it would have run:
    a finished resolver's deadlines (and their messages) are freed when it stops."""
    clock = ManualClock()
    callback = Callback()
    held = weakref.ref(callback)
    timer = clock.call_later(3600.0, callback)
    del callback
    assert held() is not None and timer.active()
    timer.cancel()
    assert held() is None and not timer.active()
    assert clock.pending() == 0


def test_a_timer_that_ran_is_spent_and_runs_once() -> None:
    clock = ManualClock()
    callback = Callback()
    timer = clock.call_later(1.0, callback)
    clock.advance(2.0)
    assert callback.calls == 1 and not timer.active()
    timer.cancel()  # too late: nothing happens
    clock.advance(2.0)
    assert callback.calls == 1
