"""Prometheus metrics, pulled: each scrape reads the runtime, the actors' snapshots and the store.

    registry = build_registry(runtime, store)        # its own CollectorRegistry
    body = render(registry)                           # bytes for GET /metrics, CONTENT_TYPE
    create_app(..., metrics_renderer=renderer(runtime, store))   # the same, for ops.api

Nothing is pushed by the actors: on each scrape the collector reads the registry of names, asks
the snapshot (``GetState``) of every scheduler, listener, signer and price cache *at once*, waits
for all of them together at most ``snapshot_timeout_s`` and reads ``store.stats()``. An actor that
does not answer in time (or is restarting, or answers garbage) is left out of this scrape and
counted in ``oracle_runner_scrape_errors_total{source=<actor>}``; its unanswered request is reused
by the next scrape, so a hung actor's mailbox does not grow with every scrape. Actors are chosen
by their type (``Entry.actor_type``) or, failing that, by the part of their name before ``:``.
Every label value passes through ``redact``. A key that is absent from a snapshot, or not a
number, is skipped silently. This module reads; ``ops.metrics_actors`` turns snapshots into
families.

Metrics, and where each value comes from (``snapshot[key]`` of the actor type named):

runtime (registry, no asks; resolvers are summed under ``actor="resolver:*"``)
  oracle_runner_actor_up{actor,type}                 gauge    Entry.status is running (1/0)
  oracle_runner_actor_restarts_total{actor,type}     counter  Entry.restarts
  oracle_runner_actor_mailbox_depth{actor,type}      gauge    Entry.mailbox_depth()
  oracle_runner_resolvers_alive                      gauge    running entries of type resolver
  oracle_runner_dead_letters_total                   counter  Registry.dead_letters
  oracle_runner_runtime_failed                       gauge    Runtime.failed is set (1/0)
  oracle_runner_scrape_errors_total{source}          counter  snapshots (or the store) not read
  oracle_runner_scrape_duration_seconds              gauge    time spent gathering this scrape

scheduler
  oracle_runner_jobs{state}                          gauge    ["jobs"][state], every JobState
                                                              (fallback: counted in store "jobs")
  oracle_runner_dead_letter_queue_size               gauge    ["jobs"]["dead"]
  oracle_runner_scheduler_heap_size                  gauge    ["waiting_heap"] (entries of the
                                                              dispatch heap, stale ones included)
  oracle_runner_oldest_overdue_seconds               gauge    ["oldest_overdue_s"] (fallback: the
                                                              largest now - due_at of waiting or
                                                              running jobs in store "jobs"; 0)
  oracle_runner_commit_latency_seconds               histogram ["commit_latency"] =
                                                              {"buckets": [[le, cumulative count],
                                                              ...], "sum": s, "count": n}; absent:
                                                              no samples
  oracle_runner_dispute_windows_open                 gauge    entries > 0 of ["dispute_left_s"]
  oracle_runner_dispute_window_left_seconds          gauge    smallest entry > 0 of it
  oracle_runner_finalize_lag_seconds                 gauge    ["finalize_lag_s"], else the largest
                                                              -entry <= 0 of ["dispute_left_s"]
                                                              (windows over, not yet finalized)
  oracle_runner_chain_halted{chain}                  gauge    chain in ["halted_chains"], or a
                                                              listener's or signer's ["halted"]
                                                              is non-empty

listener (chain: ["chain"], else the name after "listener:")
  oracle_runner_chain_head_block{chain}              gauge    ["head"]
  oracle_runner_chain_cursor_block{chain}            gauge    ["cursor"]
  oracle_runner_chain_head_lag_blocks{chain}         gauge    ["head"] - ["cursor"]
  oracle_runner_listener_log_range_blocks{chain}     gauge    ["range"]
  oracle_runner_listener_polls_total{chain}          counter  ["polls"]     (per incarnation)
  oracle_runner_listener_errors_total{chain}         counter  ["errors"]
  oracle_runner_listener_bad_logs_total{chain}       counter  ["bad_logs"]
  oracle_runner_listener_reorgs_total{chain}         counter  ["reorgs"]
  oracle_runner_listener_markets_total{chain}        counter  ["markets"]

signer (chain: ["chain"], else the name after "signer:")
  oracle_runner_signer_nonce{chain}                  gauge    ["nonce"]
  oracle_runner_signer_in_flight_transactions{chain} gauge    ["in_flight"] (a number, or the
                                                              length of a list or dict)
  oracle_runner_signer_bumps_total{chain}            counter  ["bumps"]
  oracle_runner_wallet_balance_wei{chain}            gauge    ["balance_wei"]
  oracle_runner_rpc_requests_total{chain}            counter  ["rpc_requests"] (the chain's
                                                              EvmClient: every request, retries
                                                              included)
  oracle_runner_rpc_failures_total{chain}            counter  ["rpc_failures"] (of those, failed)

price_cache
  oracle_runner_hyperliquid_requests_total{type,status} counter ["requests"]: {(type, status): n},
                                                              {type: {status: n}} or
                                                              [[type, status, n], ...]
  oracle_runner_hyperliquid_weight_spent_total       counter  ["weight_spent"]
  oracle_runner_hyperliquid_retries_total            counter  ["retries"]
  oracle_runner_hyperliquid_circuit_open             gauge    ["breaker_open"] (1/0)
  oracle_runner_price_cache_hits_total               counter  ["cache_hits"]
  oracle_runner_price_cache_misses_total             counter  ["cache_misses"]
  oracle_runner_price_cache_coalesced_total          counter  ["coalesced"]
  oracle_runner_price_cache_held_total               counter  ["held"] (sources disagreed)
  oracle_runner_hyperliquid_weight_ledger_save_failures_total counter ["ledger_save_failures"]

store (``Store.stats()``)
  oracle_runner_markets_discovered_total             counter  entries["markets"] (never deleted)
  oracle_runner_lmdb_used_bytes                      gauge    used_bytes
  oracle_runner_lmdb_map_size_bytes                  gauge    map_size
  oracle_runner_lmdb_max_map_size_bytes              gauge    max_map_size
  oracle_runner_lmdb_entries{db}                     gauge    entries[db]
  oracle_runner_lmdb_transactions_total              counter  transactions
  oracle_runner_lmdb_writes_total                    counter  writes
  oracle_runner_lmdb_map_growths_total               counter  map_growths
  oracle_runner_lmdb_bad_values_total                counter  bad_values
"""

from __future__ import annotations

import functools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import pykka
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from pydantic import BaseModel

from ops import metrics_actors as from_actors
from ops.metrics_actors import Context, P, Snapshots
from ops.redact import redact as default_redact
from protocol.messages import GetState
from protocol.records import Job
from storage import Store
from supervision import Runtime
from supervision.registry import Entry, Status

CONTENT_TYPE = CONTENT_TYPE_LATEST
SNAPSHOT_TYPES = ("scheduler", "listener", "signer", "price_cache")
RESOLVER_TYPE = "resolver"


def _kind_of(entry: Entry) -> str:
    return entry.actor_type if entry.actor_type else entry.name.split(":", 1)[0]


class RunnerCollector(Collector):
    """Reads the runtime, the actors' snapshots and the store on every ``collect``."""

    def __init__(
        self,
        runtime: Runtime,
        store: Store | None = None,
        *,
        snapshot_timeout_s: float = 0.5,
        redact: Callable[[str], str] = default_redact,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.snapshot_timeout_s = snapshot_timeout_s
        self.redact = redact
        self._lock = threading.Lock()
        self._errors: Counter[str] = Counter()
        self._pending: dict[str, tuple[pykka.ActorRef[Any], pykka.Future[Any]]] = {}

    def _error(self, source: str) -> None:
        self._errors[source] += 1

    def describe(self) -> list[Metric]:
        """Nothing up front: registering must not ask the actors."""
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:  # concurrent scrapes take turns; each is bounded
            started = time.monotonic()
            entries = self.runtime.registry.entries()
            snapshots = self._snapshots(entries)
            ctx = Context(
                redact=self.redact,
                jobs=functools.cache(self._jobs),  # one store scan per scrape at most
                now=lambda: float(self.runtime.clock.now()),
                on_error=self._error,
            )
            families = [
                *self._runtime(entries),
                *from_actors.scheduler(snapshots, ctx),
                *from_actors.listeners(snapshots, ctx),
                *from_actors.signers(snapshots, ctx),
                *from_actors.price_cache(snapshots, ctx),
                *self._store(),
            ]
            families += self._scrape(time.monotonic() - started)
        yield from families

    # --- asking the actors, all at once, within one deadline -----------------------------

    def _snapshots(self, entries: Iterable[Entry]) -> Snapshots:
        asked: list[tuple[Entry, pykka.Future[Any]]] = []
        for entry in entries:
            kind = _kind_of(entry)
            if kind not in SNAPSHOT_TYPES:
                continue
            ref = entry.ref
            if ref is None or entry.status is not Status.RUNNING:
                self._errors[entry.name] += 1
                continue
            pending = self._pending.get(entry.name)
            if pending is None or pending[0] is not ref:
                pending = (ref, ref.ask(GetState(), block=False))
                self._pending[entry.name] = pending
            asked.append((entry, pending[1]))
        deadline = time.monotonic() + self.snapshot_timeout_s
        found: Snapshots = {}
        for entry, future in asked:
            try:
                answer = future.get(timeout=max(0.0, deadline - time.monotonic()))
            except pykka.Timeout:
                self._errors[entry.name] += 1
                continue  # keep the request: the next scrape waits on it instead of asking again
            except Exception:
                self._pending.pop(entry.name, None)
                self._errors[entry.name] += 1
                continue
            self._pending.pop(entry.name, None)
            if isinstance(answer, BaseModel):
                answer = answer.model_dump(mode="python")
            if not isinstance(answer, Mapping):
                self._errors[entry.name] += 1
                continue
            found.setdefault(_kind_of(entry), []).append((entry.name, dict(answer)))
        return found

    # --- families ------------------------------------------------------------------------

    def _runtime(self, entries: list[Entry]) -> list[Metric]:
        up = GaugeMetricFamily(
            P + "actor_up", "Whether the actor runs now.", labels=["actor", "type"]
        )
        restarts = CounterMetricFamily(
            P + "actor_restarts",
            "Restarts of the actor by its supervisor.",
            labels=["actor", "type"],
        )
        depth = GaugeMetricFamily(
            P + "actor_mailbox_depth", "Messages waiting for the actor.", labels=["actor", "type"]
        )
        resolvers = {"up": 0, "restarts": 0, "depth": 0, "seen": 0}
        for entry in sorted(entries, key=lambda e: e.name):
            running = entry.status is Status.RUNNING and entry.ref is not None
            if _kind_of(entry) == RESOLVER_TYPE:
                resolvers["seen"] += 1
                resolvers["up"] += int(running)
                resolvers["restarts"] += entry.restarts
                resolvers["depth"] += entry.mailbox_depth()
                continue
            labels = [self.redact(entry.name), self.redact(entry.actor_type)]
            up.add_metric(labels, int(running))
            restarts.add_metric(labels, entry.restarts)
            depth.add_metric(labels, entry.mailbox_depth())
        if resolvers["seen"]:
            labels = ["resolver:*", RESOLVER_TYPE]
            restarts.add_metric(labels, resolvers["restarts"])
            depth.add_metric(labels, resolvers["depth"])
        alive = GaugeMetricFamily(
            P + "resolvers_alive", "Resolver actors running now.", value=resolvers["up"]
        )
        dead = CounterMetricFamily(
            P + "dead_letters",
            "Messages told to a name that was gone, unknown or full.",
            value=self.runtime.registry.dead_letters,
        )
        failed = GaugeMetricFamily(
            P + "runtime_failed",
            "Whether the root supervisor gave up.",
            value=int(self.runtime.failed.is_set()),
        )
        pool = self.runtime.services.threads
        threads = GaugeMetricFamily(
            P + "actor_threads",
            "Threads of actor loops: running one, or idle and waiting to be reused.",
            labels=["state"],
        )
        threads.add_metric(["running"], len(pool.running()))
        threads.add_metric(["idle"], pool.idle())
        started = CounterMetricFamily(
            P + "actor_threads_started",
            "Threads started for actor loops (a reused thread is not counted again).",
            value=pool.started,
        )
        return [up, restarts, depth, alive, dead, failed, threads, started]

    def _store(self) -> list[Metric]:
        if self.store is None:
            return []
        try:
            stats = self.store.stats()
        except Exception:
            self._errors["store"] += 1
            return []
        entries = GaugeMetricFamily(P + "lmdb_entries", "Entries per database.", labels=["db"])
        for db, n in sorted(stats.entries.items()):
            entries.add_metric([db], n)
        g, c = GaugeMetricFamily, CounterMetricFamily
        return [
            c(
                P + "markets_discovered",
                "Markets known (stored).",
                value=stats.entries.get("markets", 0),
            ),
            g(P + "lmdb_used_bytes", "Bytes of the map in use.", value=stats.used_bytes),
            g(P + "lmdb_map_size_bytes", "Bytes of the map now.", value=stats.map_size),
            g(P + "lmdb_max_map_size_bytes", "Largest map allowed.", value=stats.max_map_size),
            entries,
            c(P + "lmdb_transactions", "Durable write transactions.", value=stats.transactions),
            c(P + "lmdb_writes", "Write functions committed.", value=stats.writes),
            c(P + "lmdb_map_growths", "Times the map was grown.", value=stats.map_growths),
            c(P + "lmdb_bad_values", "Stored values that did not decode.", value=stats.bad_values),
        ]

    def _scrape(self, seconds: float) -> list[Metric]:
        errors = CounterMetricFamily(
            P + "scrape_errors", "Snapshots not read in a scrape, by source.", labels=["source"]
        )
        for source, n in sorted(self._errors.items()):
            errors.add_metric([self.redact(source)], n)
        duration = GaugeMetricFamily(
            P + "scrape_duration_seconds", "Time spent gathering this scrape.", value=seconds
        )
        return [errors, duration]

    # --- fallback from the store --------------------------------------------------------

    def _jobs(self) -> list[Job] | None:
        if self.store is None:
            return None
        try:
            return [job for _, job in self.store.items("jobs", expect=Job)]
        except Exception:
            self._errors["store"] += 1
            return None


def build_registry(
    runtime: Runtime,
    store: Store | None = None,
    *,
    snapshot_timeout_s: float = 0.5,
    redact: Callable[[str], str] = default_redact,
) -> CollectorRegistry:
    """A registry holding only the runner's collector (no process or platform metrics)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        RunnerCollector(runtime, store, snapshot_timeout_s=snapshot_timeout_s, redact=redact)
    )
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``, served with ``CONTENT_TYPE``."""
    return generate_latest(registry)


def renderer(
    runtime: Runtime,
    store: Store | None = None,
    *,
    snapshot_timeout_s: float = 0.5,
    redact: Callable[[str], str] = default_redact,
) -> Callable[[], bytes]:
    """``render`` bound to a new registry: the ``metrics_renderer`` of ``ops.api.create_app``."""
    registry = build_registry(runtime, store, snapshot_timeout_s=snapshot_timeout_s, redact=redact)
    return functools.partial(render, registry)
