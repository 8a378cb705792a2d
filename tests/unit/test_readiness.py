"""``ReadinessChecker`` on a real runtime of stub actors whose states the tests set."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ops.api_models import Health
from ops.readiness import ReadinessChecker
from protocol.supervision import ChildSpec, FaultAction, FaultRule, SupervisorSpec
from storage import Store
from supervision import FaultPlan, ManualClock, Runtime, SupervisedActor

pytestmark = pytest.mark.timeout(30)

HEALTHY: dict[str, dict[str, Any]] = {
    "scheduler": {"jobs": {"waiting": 3}, "halted_chains": []},
    "listener:a": {"head": 120, "cursor": 118, "halted": ""},
    "signer:a": {"phase": "running", "halted": "", "stuck": 0, "in_flight": 1},
    "price_cache": {"breaker": "closed", "reachable": True},
}


class Stub(SupervisedActor):
    """Its state is whatever ``extra["states"][name]`` says now."""

    def snapshot(self) -> Any:
        return dict(self.services.extra["states"][self.name])


@contextmanager
def runtime(
    tmp_path: Path, faults: FaultPlan | None = None, names: tuple[str, ...] = tuple(HEALTHY)
) -> Iterator[tuple[Runtime, Store, dict[str, dict[str, Any]]]]:
    states = {name: dict(HEALTHY[name]) for name in names}
    tree = SupervisorSpec(children=tuple(ChildSpec(id=name, actor="stub") for name in names))
    with Store.open(tmp_path / "data") as store:
        extra = {"states": states}
        rt = Runtime(
            tree, actor_types={"stub": Stub}, clock=ManualClock(), faults=faults, extra=extra
        )
        with rt:
            yield rt, store, states


def statuses(checker: ReadinessChecker) -> dict[str, Health]:
    return {c.name: c.status for c in checker.check().components}


def test_a_healthy_daemon_is_ready(tmp_path: Path) -> None:
    with runtime(tmp_path) as (rt, store, _):
        verdict = ReadinessChecker(rt, store, ["a"]).check()
        assert verdict.ready
        assert {c.name: c.status for c in verdict.components} == {
            "actors": Health.OK,
            "scheduler": Health.OK,
            "listener:a": Health.OK,
            "signer:a": Health.OK,
            "hyperliquid": Health.OK,
            "lmdb": Health.OK,
        }
        listener = next(c for c in verdict.components if c.name == "listener:a")
        assert listener.data["lag"] == 2


def test_missing_optional_parts_are_unknown_but_a_missing_listener_fails(tmp_path: Path) -> None:
    with runtime(tmp_path, names=("scheduler",)) as (rt, store, _):
        found = statuses(ReadinessChecker(rt, store, ["a"]))
        assert found["signer:a"] is Health.UNKNOWN
        assert found["hyperliquid"] is Health.UNKNOWN
        assert found["listener:a"] is Health.FAIL


@pytest.mark.parametrize(
    ("name", "state", "expected", "words"),
    [
        ("listener:a", {"head": 500, "cursor": 118, "halted": ""}, Health.FAIL, "head lag 382"),
        ("listener:a", {"head": 120, "cursor": 118, "halted": "chain id 1"}, Health.FAIL, "halted"),
        ("listener:a", {"head": 0, "cursor": None, "halted": ""}, Health.UNKNOWN, "no head"),
        ("signer:a", {"phase": "halted", "halted": "wrong chain"}, Health.FAIL, "wrong chain"),
        ("signer:a", {"phase": "running", "halted": "", "stuck": 2}, Health.FAIL, "2 trans"),
        ("signer:a", {"phase": "running", "funded": False}, Health.FAIL, "balance"),
        ("signer:a", {"phase": "syncing", "halted": "", "stuck": 0}, Health.UNKNOWN, "syncing"),
        ("signer:a", {}, Health.UNKNOWN, "not reported"),
        ("price_cache", {"breaker": "open", "reachable": False}, Health.FAIL, "unreachable"),
        ("price_cache", {"queries": 3}, Health.UNKNOWN, "not reported"),
        ("scheduler", {"jobs": {}, "halted_chains": ["a"]}, Health.FAIL, "chains halted: a"),
    ],
)
def test_each_component_reads_its_actor(
    tmp_path: Path, name: str, state: dict[str, Any], expected: Health, words: str
) -> None:
    with runtime(tmp_path) as (rt, store, states):
        states[name] = state
        verdict = ReadinessChecker(rt, store, ["a"]).check()
        component = next(
            c for c in verdict.components if c.name == name.replace("price_cache", "hyperliquid")
        )
        assert component.status is expected, component
        assert words in component.detail, component
        assert verdict.ready is (expected is not Health.FAIL)


def test_a_cursor_that_stops_while_the_head_moves_fails(tmp_path: Path) -> None:
    now = [1000.0]
    with runtime(tmp_path) as (rt, store, states):
        checker = ReadinessChecker(rt, store, ["a"], clock=lambda: now[0], max_cursor_age_s=60)
        assert statuses(checker)["listener:a"] is Health.OK
        now[0] += 120  # no new block: an idle chain is fine
        assert statuses(checker)["listener:a"] is Health.OK
        states["listener:a"] = {"head": 125, "cursor": 118, "halted": ""}
        assert statuses(checker)["listener:a"] is Health.FAIL
        states["listener:a"] = {"head": 126, "cursor": 124, "halted": ""}  # it moved again
        assert statuses(checker)["listener:a"] is Health.OK


def test_a_dead_actor_fails_the_actors_component(tmp_path: Path) -> None:
    with runtime(tmp_path) as (rt, store, _):
        rt.registry.down("price_cache", None, "RuntimeError: gone fishing")
        verdict = ReadinessChecker(rt, store, ["a"]).check()
        actors = next(c for c in verdict.components if c.name == "actors")
        assert not verdict.ready and actors.status is Health.FAIL
        assert "price_cache (down: RuntimeError: gone fishing)" in actors.detail


def test_a_slow_actor_never_hangs_the_probe(tmp_path: Path) -> None:
    slow = FaultRule(
        actor="signer:a", message="get_state", action=FaultAction.DELAY, delay_s=3, times=None
    )
    with runtime(tmp_path, faults=FaultPlan([slow])) as (rt, store, _):
        by_ask = ReadinessChecker(rt, store, ["a"], ask_timeout_s=0.2).check()
        signer = next(c for c in by_ask.components if c.name == "signer:a")
        assert signer.status is Health.FAIL and "Timeout" in signer.detail
        by_deadline = ReadinessChecker(rt, store, ["a"], ask_timeout_s=10, deadline_s=0.2)
        first = statuses(by_deadline)
        assert first["signer:a"] is Health.FAIL and first["scheduler"] is Health.OK
        again = by_deadline.check()  # the first probe's ask is still waiting
        signer = next(c for c in again.components if c.name == "signer:a")
        assert signer.status is Health.FAIL and "has not finished" in signer.detail


def test_a_closed_store_fails_lmdb(tmp_path: Path) -> None:
    with runtime(tmp_path) as (rt, store, _):
        closed = Store.open(tmp_path / "other")
        closed.close()
        verdict = ReadinessChecker(rt, closed, ["a"]).check()
        lmdb = next(c for c in verdict.components if c.name == "lmdb")
        assert lmdb.status is Health.FAIL and "closed" in lmdb.detail
        assert store.get("meta", b"ops.readyz.probe") is None  # the probe leaves nothing


def test_the_lmdb_write_probe_runs_at_most_once_per_interval(tmp_path: Path) -> None:
    with runtime(tmp_path) as (rt, store, _):
        now = [1000.0]
        checker = ReadinessChecker(rt, store, ["a"], clock=lambda: now[0], write_probe_every_s=10)

        def lmdb_probe() -> tuple[Health, int]:
            before = store.stats().transactions
            verdict = checker.check()
            lmdb = next(c for c in verdict.components if c.name == "lmdb")
            return lmdb.status, store.stats().transactions - before

        assert lmdb_probe() == (Health.OK, 1)
        now[0] += 9
        assert lmdb_probe() == (Health.OK, 0)  # written 9 s ago: no new write
        now[0] += 1
        assert lmdb_probe() == (Health.OK, 1)
        now[0] -= 60  # the wall clock stepped back: written "in the future" is not trusted
        assert lmdb_probe() == (Health.OK, 1)
