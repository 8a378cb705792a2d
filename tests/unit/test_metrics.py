"""Scrapes of a real runtime (real Scheduler, real Store) with stand-in actors' snapshots."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ops.metrics import build_registry, render, renderer
from ops.redact import Redactor
from protocol.messages import OperatorAction, OperatorCommand
from supervision import Runtime
from tests.unit.markets import T_END, discovered
from tests.unit.markets import key as market
from tests.unit.ops_actors import SETTLE, Hang, ops_runtime

pytestmark = pytest.mark.timeout(60)

SECRET = "9f" * 32

SNAPSHOTS: dict[str, Mapping[str, Any]] = {
    "listener:dev": {"chain": "dev", "head": 120, "cursor": 100, "range": 500, "polls": 9,
                     "errors": 1, "bad_logs": 2, "reorgs": 0, "markets": 5, "halted": ""},
    "signer:dev": {"chain": "dev", "nonce": 42, "in_flight": ["0xa", "0xb"], "bumps": 3,
                   "balance_wei": 10**18, "rpc_requests": 90, "rpc_failures": 7,
                   "key": "0x" + SECRET},
    "price_cache": {
        "requests": {("candleSnapshot", "200"): 7, ("candleSnapshot", "429"): 1,
                     (SECRET, "200"): 1},
        "weight_spent": 140, "cache_hits": 11, "cache_misses": 4, "breaker_open": False,
        "ledger_save_failures": 2,
    },
}  # fmt: skip


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(body: bytes, name: str, **labels: str) -> float:
    return samples(body)[(name, tuple(sorted(labels.items())))]


def test_a_scrape_reads_runtime_scheduler_actors_and_store(tmp_path: Path) -> None:
    redactor = Redactor([SECRET])
    with ops_runtime(tmp_path, SNAPSHOTS, redact=redactor.redact) as (rt, _store):
        rt.services.extra["script"].update({str(market(2)): "permanent", str(market(3)): "hold"})
        for n in (1, 2, 3, 4):
            rt.ask("scheduler", discovered(market(n)))
        rt.ask("scheduler", discovered(market(5), t_end=T_END + 10_000))
        cancel = OperatorCommand(action=OperatorAction.CANCEL, key=market(4), operator="t")
        assert rt.ask("scheduler", cancel).ok
        rt.clock.advance(100 + SETTLE + 40)  # one tick: markets 1-3 are due, 40 s late
        rt.wait_for(
            lambda: (
                {k: v for k, v in rt.state("scheduler")["jobs"].items() if v}
                == {"waiting": 1, "running": 1, "finalized": 1, "dead": 1, "cancelled": 1}
            )
        )
        body = render(build_registry(rt, rt.services.extra["store"], redact=redactor.redact))

    assert SECRET not in body.decode().lower()
    got = samples(body)
    jobs = {labels[0][1]: v for (name, labels), v in got.items() if name == "oracle_runner_jobs"}
    assert jobs == {"waiting": 1, "running": 1, "paused": 0, "parked": 0, "dead": 1,
                    "cancelled": 1, "finalized": 1}  # fmt: skip
    assert value(body, "oracle_runner_dead_letter_queue_size") == 1
    assert value(body, "oracle_runner_markets_discovered_total") == 5
    assert value(body, "oracle_runner_oldest_overdue_seconds") == 40  # market 3, from the store
    assert value(body, "oracle_runner_scheduler_heap_size") >= 1
    assert value(body, "oracle_runner_chain_head_lag_blocks", chain="dev") == 20
    assert value(body, "oracle_runner_chain_cursor_block", chain="dev") == 100
    assert value(body, "oracle_runner_listener_bad_logs_total", chain="dev") == 2
    assert value(body, "oracle_runner_chain_halted", chain="dev") == 0
    assert value(body, "oracle_runner_signer_nonce", chain="dev") == 42
    assert value(body, "oracle_runner_signer_in_flight_transactions", chain="dev") == 2
    assert value(body, "oracle_runner_signer_bumps_total", chain="dev") == 3
    assert value(body, "oracle_runner_wallet_balance_wei", chain="dev") == 1e18
    assert value(body, "oracle_runner_rpc_requests_total", chain="dev") == 90
    assert value(body, "oracle_runner_rpc_failures_total", chain="dev") == 7
    assert value(body, "oracle_runner_hyperliquid_requests_total",
                 type="candleSnapshot", status="429") == 1  # fmt: skip
    assert value(body, "oracle_runner_hyperliquid_requests_total",
                 type="[REDACTED]", status="200") == 1  # fmt: skip
    assert value(body, "oracle_runner_hyperliquid_weight_spent_total") == 140
    assert value(body, "oracle_runner_price_cache_hits_total") == 11
    assert value(body, "oracle_runner_hyperliquid_circuit_open") == 0
    assert value(body, "oracle_runner_hyperliquid_weight_ledger_save_failures_total") == 2
    assert value(body, "oracle_runner_actor_up", actor="scheduler", type="scheduler") == 1
    assert value(body, "oracle_runner_actor_restarts_total", actor="signer:dev",
                 type="signer") == 0  # fmt: skip
    assert ("oracle_runner_actor_mailbox_depth",
            (("actor", "resolver:*"), ("type", "resolver"))) in got  # fmt: skip
    assert value(body, "oracle_runner_resolvers_alive") == 1  # market 3 holds
    running = value(body, "oracle_runner_actor_threads", state="running")
    assert running >= 2  # the scheduler, the resolver of market 3, ...
    started = value(body, "oracle_runner_actor_threads_started_total")
    assert started >= running + value(body, "oracle_runner_actor_threads", state="idle")
    assert value(body, "oracle_runner_lmdb_entries", db="jobs") == 5
    assert value(body, "oracle_runner_lmdb_used_bytes") > 0
    assert value(body, "oracle_runner_lmdb_map_size_bytes") >= value(
        body, "oracle_runner_lmdb_used_bytes"
    )
    assert not [k for k in got if k[0] == "oracle_runner_scrape_errors_total"]
    # no market was committed: the histogram is empty, or (once the scheduler keeps it) zero
    latency = [v for k, v in got.items() if k[0].startswith("oracle_runner_commit_latency")]
    assert set(latency) <= {0.0}


def test_scheduler_extensions_histogram_and_dispute_windows(tmp_path: Path) -> None:
    """The keys the real scheduler does not give yet, from a stand-in scheduler."""
    snapshot = {
        "jobs": {"finalized": 3},
        "oldest_overdue_s": 12.5,
        "commit_latency": {"buckets": [[1.0, 1], [10.0, 3], [60.0, 4]], "sum": 42.0, "count": 5},
        "dispute_left_s": [30, 5, -8, -2],
        "halted_chains": ["other"],
    }
    body = _stand_in_scheduler_only(tmp_path, snapshot)
    assert value(body, "oracle_runner_oldest_overdue_seconds") == 12.5
    assert value(body, "oracle_runner_commit_latency_seconds_bucket", le="10.0") == 3
    assert value(body, "oracle_runner_commit_latency_seconds_bucket", le="+Inf") == 5
    assert value(body, "oracle_runner_commit_latency_seconds_sum") == 42
    assert value(body, "oracle_runner_commit_latency_seconds_count") == 5
    assert value(body, "oracle_runner_dispute_windows_open") == 2
    assert value(body, "oracle_runner_dispute_window_left_seconds") == 5
    assert value(body, "oracle_runner_finalize_lag_seconds") == 8
    assert value(body, "oracle_runner_chain_halted", chain="other") == 1
    assert value(body, "oracle_runner_jobs", state="finalized") == 3
    assert value(body, "oracle_runner_jobs", state="dead") == 0


def _stand_in_scheduler_only(tmp_path: Path, snapshot: Mapping[str, object]) -> bytes:
    """A runtime whose only scheduler-typed actor is the stand-in (no real scheduler)."""
    from protocol.supervision import ChildSpec, SupervisorSpec
    from tests.unit.ops_actors import Stand

    tree = SupervisorSpec(
        children=(ChildSpec(id="scheduler", actor="scheduler", args={"snapshot": snapshot}),)
    )
    with Runtime(tree, actor_types={"scheduler": Stand}) as rt:
        return render(build_registry(rt, None))


def test_a_bad_histogram_is_refused_and_counted(tmp_path: Path) -> None:
    snapshot = {"commit_latency": {"buckets": [[1, 5], [2, 3]], "sum": 1, "count": 5}}
    body = _stand_in_scheduler_only(tmp_path, snapshot)
    got = samples(body)
    assert not [k for k in got if k[0].startswith("oracle_runner_commit_latency")]
    assert value(body, "oracle_runner_scrape_errors_total", source="scheduler") == 1


def test_a_halted_signer_halts_its_chain(tmp_path: Path) -> None:
    snapshots = {
        "signer:dev": {**SNAPSHOTS["signer:dev"], "halted": "the signing key of dev changed"},
        "signer:other": {"chain": "other", "nonce": 1, "halted": ""},
    }
    with ops_runtime(tmp_path, snapshots) as (rt, store):
        body = render(build_registry(rt, store))
    assert value(body, "oracle_runner_chain_halted", chain="dev") == 1
    assert value(body, "oracle_runner_chain_halted", chain="other") == 0


def depth(rt: Runtime, name: str) -> int:
    entry = rt.registry.entry(name)
    return -1 if entry is None else entry.mailbox_depth()


def test_a_hung_actor_does_not_hang_the_scrape(tmp_path: Path) -> None:
    snapshots = {"signer:dev": SNAPSHOTS["signer:dev"], "signer:slow": {"nonce": 1}}
    with ops_runtime(tmp_path, snapshots) as (rt, store):
        registry = build_registry(rt, store, snapshot_timeout_s=0.2)
        rt.tell("signer:slow", Hang())
        rt.wait_for(lambda: depth(rt, "signer:slow") == 0)

        def scrape() -> bytes:
            result: list[bytes] = []
            thread = threading.Thread(target=lambda: result.append(render(registry)))
            thread.start()
            thread.join(timeout=20)
            assert not thread.is_alive(), "the scrape hung"
            return result[0]

        first = scrape()
        assert value(first, "oracle_runner_scrape_errors_total", source="signer:slow") == 1
        assert value(first, "oracle_runner_signer_nonce", chain="dev") == 42
        assert ("oracle_runner_signer_nonce", (("chain", "slow"),)) not in samples(first)
        second = scrape()
        assert value(second, "oracle_runner_scrape_errors_total", source="signer:slow") == 2
        # the unanswered GetState is reused, not sent again: one message waits, not two
        assert value(second, "oracle_runner_actor_mailbox_depth", actor="signer:slow",
                     type="signer") == 1  # fmt: skip
        rt.services.extra["release"].set()
        rt.wait_for(lambda: depth(rt, "signer:slow") == 0)

        def answered() -> bytes | None:
            body = render(registry)
            slow = ("oracle_runner_signer_nonce", (("chain", "slow"),))
            return body if slow in samples(body) else None

        third = rt.wait_for(answered)
        assert third is not None
        assert value(third, "oracle_runner_scrape_errors_total", source="signer:slow") == 2


def test_renderer_is_a_ready_route_body(tmp_path: Path) -> None:
    with ops_runtime(tmp_path) as (rt, store):
        body = renderer(rt, store)()
    assert value(body, "oracle_runner_actor_up", actor="scheduler", type="scheduler") == 1


def test_a_dead_store_and_absent_actors_still_give_an_exposition(tmp_path: Path) -> None:
    with ops_runtime(tmp_path) as (rt, store):
        registry = build_registry(rt, store)
        store.close()
        body = render(registry)
    got = samples(body)
    assert value(body, "oracle_runner_scrape_errors_total", source="store") >= 1
    assert not [k for k in got if k[0].startswith("oracle_runner_lmdb")]
    assert value(body, "oracle_runner_jobs", state="waiting") == 0  # from the scheduler
    assert math.isfinite(value(body, "oracle_runner_scrape_duration_seconds"))
