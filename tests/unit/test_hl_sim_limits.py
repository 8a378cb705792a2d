"""Simulator rate limiter (rolling minute per client) and seeded fault injection."""

from __future__ import annotations

import pytest

from devnet.hl_sim.faults import FaultConfig, Faults
from devnet.hl_sim.ratelimit import WeightLimiter

pytestmark = pytest.mark.timeout(30)


def test_admits_up_to_the_limit_then_refuses_until_weight_rolls_out() -> None:
    lim = WeightLimiter(limit=1200, window_ms=60_000)
    for i in range(600):
        assert lim.admit("a", 2, now_ms=i) is None
    assert lim.spent("a", now_ms=599) == 1200
    wait = lim.admit("a", 2, now_ms=1000)
    assert wait == 60_000 - 1000  # the first request (t=0) rolls out at t=60000
    assert lim.admit("b", 2, now_ms=1000) is None, "clients have separate budgets"
    assert lim.admit("a", 2, now_ms=59_999) is not None
    assert lim.admit("a", 2, now_ms=60_000) is None
    assert lim.totals() == {"a": 1202, "b": 2}


def test_refused_requests_cost_nothing_and_item_weight_counts() -> None:
    lim = WeightLimiter(limit=100, window_ms=60_000)
    assert lim.admit("a", 20, now_ms=0) is None
    lim.charge("a", 75, now_ms=0)  # e.g. 1500 items of a per-20 type
    assert lim.admit("a", 20, now_ms=1) is not None
    assert lim.admit("a", 20, now_ms=2) is not None
    assert lim.spent("a", now_ms=2) == 95
    assert lim.admit("a", 5, now_ms=3) is None  # 95 + 5 == limit is still fine


def test_faults_are_reproducible_by_seed() -> None:
    config = FaultConfig(p_5xx=0.2, p_429=0.1, p_malformed=0.1, p_truncated=0.1, seed=42)
    a = [Faults(config).draw() for _ in range(1)]
    one, two = Faults(config), Faults(config)
    seq1 = [one.draw() for _ in range(200)]
    seq2 = [two.draw() for _ in range(200)]
    assert seq1 == seq2 and a[0] == seq1[0]
    assert set(seq1) == {None, "5xx", "429", "malformed", "truncated"}
    one.update({"seed": 42})
    assert [one.draw() for _ in range(200)] == seq1


def test_script_goes_first_and_bad_knobs_change_nothing() -> None:
    faults = Faults(FaultConfig(script=("5xx", "ok", "429")))
    assert [faults.draw() for _ in range(4)] == ["5xx", None, "429", None]
    assert dict(faults.injected) == {"5xx": 1, "429": 1}
    with pytest.raises(ValueError, match="unknown fault knobs"):
        faults.update({"p_teapot": 1.0})
    with pytest.raises(ValueError, match="sum to <= 1"):
        faults.update({"p_5xx": 0.7, "p_429": 0.7})
    with pytest.raises(ValueError, match="unknown script entries"):
        faults.update({"script": ["explode"]})
    assert faults.config == FaultConfig(script=("5xx", "ok", "429"))
