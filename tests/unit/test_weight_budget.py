"""The weight budget: capacity, the rolling window, in-order admission, per-item charges, bounds.

Time is passed in explicitly (seconds), so every case is exact. The property test drives the
simulator's own limiter (``devnet.hl_sim.ratelimit``) alongside: whatever the budget admits, the
server admits too.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devnet.hl_sim.ratelimit import WeightLimiter
from sources.weight_budget import WeightBudget

pytestmark = pytest.mark.timeout(60)


def test_capacity_keeps_the_headroom() -> None:
    assert WeightBudget.for_limit(1200, 10).capacity == 1080
    assert WeightBudget.for_limit(100, 10).capacity == 90
    assert WeightBudget.for_limit(1200, 0).capacity == 1200
    assert WeightBudget.for_limit(1200, 12.5).capacity == 1050
    with pytest.raises(ValueError):
        WeightBudget.for_limit(1200, 100)
    with pytest.raises(ValueError):
        WeightBudget(capacity=0)


def test_items_leave_in_order_while_they_fit() -> None:
    budget: WeightBudget[str] = WeightBudget(capacity=45)
    for name, weight in (("a", 20), ("b", 20), ("c", 20), ("d", 2)):
        assert budget.enqueue(name, weight, now=0.0)
    assert [budget.take(0.0), budget.take(0.0)] == ["a", "b"]
    # "d" (2) would fit, but "c" (20) is first: a head that does not fit holds the rest back.
    assert budget.take(0.0) is None
    assert budget.head() == "c" and len(budget) == 2
    assert budget.spent(0.0) == 40


def test_weight_rolls_out_exactly_one_window_later() -> None:
    budget: WeightBudget[str] = WeightBudget(capacity=40, window_s=60.0)
    budget.enqueue("a", 20, now=0.0)
    budget.enqueue("b", 20, now=0.0)
    budget.enqueue("c", 20, now=0.0)
    budget.take(0.0)
    budget.take(10.0)
    assert budget.head_wait_s(10.0) == 50.0  # "a" (spent at 0) leaves the window at 60
    assert budget.take(59.999) is None
    assert budget.spent(59.999) == 40
    assert budget.take(60.0) == "c"
    assert budget.spent(60.0) == 40  # b (10.0) + c (60.0)
    assert budget.spent(70.0) == 20
    assert budget.head_wait_s(70.0) is None


def test_per_item_weight_charged_after_delays_the_next_admission() -> None:
    budget: WeightBudget[str] = WeightBudget(capacity=45)
    budget.enqueue("a", 20, now=0.0)
    budget.enqueue("b", 20, now=0.0)
    assert budget.take(0.0) == "a"
    budget.charge(30, now=1.0)  # a's response held items: its full cost is known only now
    assert budget.spent(1.0) == 50  # past the capacity: it was spent, so it is counted
    assert budget.take(1.0) is None
    # b needs 50 + 20 - 45 = 25 to roll out: a's base (20, at 0) is not enough, its items are.
    assert budget.head_wait_s(1.0) == 60.0
    assert budget.take(61.0) == "b"
    assert budget.charged_total == 70


def test_catch_up_charges_only_what_is_missing() -> None:
    budget: WeightBudget[str] = WeightBudget(capacity=100)
    budget.charge(20, now=0.0)
    assert budget.catch_up(20, now=1.0) == 0
    assert budget.catch_up(60, now=1.0) == 40  # e.g. two retried attempts the source counted
    assert budget.catch_up(50, now=2.0) == 0  # never credits weight back
    assert budget.spent(2.0) == 60 and budget.charged_total == 60


def test_a_saved_ledger_restores_what_is_still_in_the_window() -> None:
    spent: WeightBudget[str] = WeightBudget(capacity=100)
    spent.charge(20, now=100.2)
    spent.charge(5, now=100.9)
    spent.charge(30, now=130.0)
    ledger = spent.ledger(now=131.0)
    assert ledger == ((101, 25), (130, 30))  # per second, rounded up: never rolls out early
    fresh: WeightBudget[str] = WeightBudget(capacity=100)
    assert fresh.restore((*ledger, (79, 7), (10**12, 4)), now=140.0) == 59  # 79 rolled out
    assert fresh.charged_total == 0  # restored weight is not this process's spending
    assert fresh.spent(140.0) == 59 and fresh.wait_s(50, now=140.0) == 101 + 60 - 140
    assert fresh.spent(161.0) == 34 and fresh.spent(200.0) == 0  # the future one came as now
    with pytest.raises(ValueError, match="charged nothing"):
        spent.restore(ledger, now=131.0)


def test_an_item_heavier_than_the_capacity_goes_alone_into_an_empty_window() -> None:
    budget: WeightBudget[str] = WeightBudget(capacity=50)
    budget.charge(10, now=0.0)
    budget.enqueue("huge", 60, now=0.0)
    assert budget.take(0.0) is None
    assert budget.head_wait_s(0.0) == 60.0
    assert budget.take(60.0) == "huge"


def test_the_queue_is_bounded_and_waits_expire_uncharged() -> None:
    budget: WeightBudget[str] = WeightBudget(capacity=20, max_queue=3)
    assert budget.enqueue("a", 20, now=0.0)
    assert budget.enqueue("b", 20, now=5.0)
    assert budget.enqueue("c", 20, now=9.0)
    assert not budget.enqueue("d", 20, now=9.0)
    assert budget.take(9.0) == "a"
    assert budget.oldest_queued_at() == 5.0
    assert budget.expire(now=14.0, max_age_s=10.0) == []
    assert budget.expire(now=15.0, max_age_s=10.0) == ["b"]
    assert budget.remove(lambda item: item == "c") == ["c"]
    assert budget.remove_head() is None and len(budget) == 0
    assert budget.spent(15.0) == 20  # only "a" was ever charged


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=60, max_value=300),
    slack=st.integers(min_value=0, max_value=50),
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30),  # seconds to move on
            st.sampled_from([2, 20, 60]),  # base weight of a new request
            st.integers(min_value=0, max_value=40),  # its per-item weight, known after
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_whatever_the_budget_admits_the_server_admits(
    capacity: int, slack: int, steps: list[tuple[int, int, int]]
) -> None:
    """Driven at the same instants and charged the same per-item weight, the simulator's limiter
    (limit = capacity + slack) never refuses what the budget let through: no 429."""
    budget: WeightBudget[tuple[int, int]] = WeightBudget(capacity=capacity)
    server = WeightLimiter(limit=capacity + slack, window_ms=60_000)
    now = 0
    for dt, base, extra in steps:
        now += dt
        budget.enqueue((base, extra), base, now=float(now))
        while (item := budget.take(float(now))) is not None:
            item_base, item_extra = item
            assert server.admit("us", item_base, now * 1000) is None
            budget.charge(item_extra, float(now))
            server.charge("us", item_extra, now * 1000)
        assert budget.spent(float(now)) == server.spent("us", now * 1000)
