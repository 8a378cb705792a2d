"""Metric families from actor snapshots: plain dicts in, ``prometheus_client`` families out.

    families = scheduler(snapshots, ctx) + listeners(snapshots, ctx) + signers(snapshots, ctx)

``snapshots`` maps an actor type to its ``(name, snapshot)`` pairs; ``ctx`` brings the redaction
of label values, the store fallback for job counts and overdue time, and the error counter. The
keys read, and the metric each feeds, are listed in ``ops.metrics``. A missing key or a value
that is not a number is skipped: these functions never raise on a snapshot's shape.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from protocol.records import Job, JobState

P = "oracle_runner_"
Snapshots = dict[str, list[tuple[str, dict[str, Any]]]]
"""Actor type -> [(actor name, snapshot)]."""
_PRICE_CACHE = (
    ("weight_spent", "hyperliquid_weight_spent", "Hyperliquid request weight spent."),
    ("retries", "hyperliquid_retries", "Hyperliquid requests retried."),
    ("breaker_open", "hyperliquid_circuit_open", "Whether the circuit breaker is open."),
    ("cache_hits", "price_cache_hits", "Data queries answered from the cache."),
    ("cache_misses", "price_cache_misses", "Data queries that needed a fetch."),
    ("coalesced", "price_cache_coalesced", "Data queries joined to an identical one in flight."),
    ("held", "price_cache_held", "Values held because the sources disagreed."),
    (
        "ledger_save_failures",
        "hyperliquid_weight_ledger_save_failures",
        "Writes of the Hyperliquid weight ledger to LMDB that failed.",
    ),
)
"""Snapshot key, metric name (counters get ``_total``), help."""
_GAUGE_KEYS = frozenset({"breaker_open"})


@dataclass(frozen=True)
class Context:
    redact: Callable[[str], str]
    jobs: Callable[[], list[Job] | None]
    """Every stored job (read only when the scheduler's snapshot lacks a key), or ``None``."""
    now: Callable[[], float]
    on_error: Callable[[str], None]
    """Count a scrape error against a source (an actor name)."""


def num(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is not a number (or a numeric string)."""
    if isinstance(value, bool | int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def first(snapshots: Snapshots, kind: str) -> dict[str, Any]:
    """The snapshot of the first actor of ``kind``, or an empty one."""
    found = snapshots.get(kind)
    return found[0][1] if found else {}


def _oldest_overdue(ctx: Context) -> float | None:
    jobs = ctx.jobs()
    if jobs is None:
        return None
    now = ctx.now()
    late = [
        now - job.due_at
        for job in jobs
        if job.state in (JobState.WAITING, JobState.RUNNING) and job.due_at <= now
    ]
    return max(late, default=0.0)


def scheduler(snapshots: Snapshots, ctx: Context) -> list[Metric]:
    """Jobs, overdue, latency, dispute windows, halted chains (listeners' ``halted`` too)."""
    snap = first(snapshots, "scheduler")
    families: list[Metric] = []
    counts = snap.get("jobs")
    if not isinstance(counts, Mapping):
        jobs_now = ctx.jobs()
        counts = None if jobs_now is None else Counter(j.state.value for j in jobs_now)
    if counts is not None:
        jobs = GaugeMetricFamily(P + "jobs", "Jobs (markets) by state.", labels=["state"])
        for state in JobState:
            jobs.add_metric([state.value], num(counts.get(state.value)) or 0)
        dlq = num(counts.get(JobState.DEAD.value)) or 0
        families += [
            jobs,
            GaugeMetricFamily(
                P + "dead_letter_queue_size", "Jobs in the dead-letter queue.", value=dlq
            ),
        ]
    queued = num(snap.get("waiting_heap"))
    if queued is not None:
        families.append(
            GaugeMetricFamily(
                P + "scheduler_heap_size",
                "Entries in the scheduler's dispatch heap (stale ones included).",
                value=queued,
            )
        )
    overdue = num(snap.get("oldest_overdue_s"))
    if overdue is None:
        overdue = _oldest_overdue(ctx)
    if overdue is not None:
        families.append(
            GaugeMetricFamily(
                P + "oldest_overdue_seconds",
                "Age past due time of the oldest unresolved (waiting or running) market.",
                value=overdue,
            )
        )
    families.append(_latency(snap.get("commit_latency"), ctx))
    families += _dispute(snap)
    halted = GaugeMetricFamily(
        P + "chain_halted",
        "Whether work on the chain is halted (scheduler, listener or signer).",
        labels=["chain"],
    )
    chains: dict[str, bool] = {}
    raw_halted = snap.get("halted_chains")
    for chain in raw_halted if isinstance(raw_halted, list | tuple | set) else ():
        chains[str(chain)] = True
    for kind in ("listener", "signer"):  # a halted signer sends nothing on its chain
        for name, actor in snapshots.get(kind, []):
            chain = str(actor.get("chain") or name.partition(":")[2])
            chains[chain] = chains.get(chain, False) or bool(actor.get("halted"))
    for chain, is_halted in sorted(chains.items()):
        halted.add_metric([ctx.redact(chain)], int(is_halted))
    families.append(halted)
    return families


def _latency(data: Any, ctx: Context) -> Metric:
    name, doc = P + "commit_latency_seconds", "From due time to the commit mined."
    if not isinstance(data, Mapping):
        return HistogramMetricFamily(name, doc, labels=[])
    try:
        buckets = [(float(le), float(n)) for le, n in data.get("buckets", [])]
        total, count = float(data["sum"]), float(data["count"])
    except (TypeError, ValueError, KeyError):
        ctx.on_error("scheduler")
        return HistogramMetricFamily(name, doc, labels=[])
    buckets.sort()
    if any(b[1] < a[1] for a, b in itertools.pairwise(buckets)):
        ctx.on_error("scheduler")  # not cumulative: refuse rather than mislead
        return HistogramMetricFamily(name, doc, labels=[])
    if not buckets or not math.isinf(buckets[-1][0]):
        buckets.append((math.inf, count))
    pairs = [("+Inf" if math.isinf(le) else repr(le), n) for le, n in buckets]
    family = HistogramMetricFamily(name, doc, labels=[])
    family.add_metric([], pairs, total)
    return family


def _dispute(snap: Mapping[str, Any]) -> list[Metric]:
    raw = snap.get("dispute_left_s")
    left = [n for n in map(num, raw) if n is not None] if isinstance(raw, list | tuple) else []
    families: list[Metric] = []
    if isinstance(raw, list | tuple):
        open_ = [n for n in left if n > 0]
        families.append(
            GaugeMetricFamily(
                P + "dispute_windows_open",
                "Committed markets whose dispute window is still open.",
                value=len(open_),
            )
        )
        if open_:
            families.append(
                GaugeMetricFamily(
                    P + "dispute_window_left_seconds",
                    "Time left in the dispute window that closes next.",
                    value=min(open_),
                )
            )
    lag = num(snap.get("finalize_lag_s"))
    if lag is None and isinstance(raw, list | tuple):
        lag = max([-n for n in left if n <= 0], default=0.0)
    if lag is not None:
        families.append(
            GaugeMetricFamily(
                P + "finalize_lag_seconds",
                "Longest time a market waits for its finalize after its dispute window.",
                value=lag,
            )
        )
    return families


def listeners(snapshots: Snapshots, ctx: Context) -> list[Metric]:
    """Head, cursor, lag, range and the poll counters, one series per chain."""

    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(P + name, doc, labels=["chain"])

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(P + name, doc, labels=["chain"])

    head = gauge("chain_head_block", "Latest block number the listener saw.")
    cursor = gauge("chain_cursor_block", "Last block scanned and handed off.")
    lag = gauge("chain_head_lag_blocks", "Blocks between the head and the cursor.")
    span = gauge("listener_log_range_blocks", "Blocks per eth_getLogs range now.")
    counters = {
        key: counter(f"listener_{key}", doc)
        for key, doc in (
            ("polls", "Polls of the chain by this listener incarnation."),
            ("errors", "Polls that failed with an RPC error."),
            ("bad_logs", "MarketCreated logs that did not decode."),
            ("reorgs", "Reorgs detected."),
            ("markets", "Markets handed to the scheduler."),
        )
    }
    for name, snap in snapshots.get("listener", []):
        chain = [ctx.redact(str(snap.get("chain") or name.partition(":")[2]))]
        h, c = num(snap.get("head")), num(snap.get("cursor"))
        for family, value in ((head, h), (cursor, c), (span, num(snap.get("range")))):
            if value is not None:
                family.add_metric(chain, value)
        if h is not None and c is not None:
            lag.add_metric(chain, max(0.0, h - c))
        for key, total in counters.items():
            value = num(snap.get(key))
            if value is not None:
                total.add_metric(chain, value)
    return [head, cursor, lag, span, *counters.values()]


def signers(snapshots: Snapshots, ctx: Context) -> list[Metric]:
    """Nonce, transactions in flight, bumps, balance, RPC requests and failures, per chain."""
    nonce = GaugeMetricFamily(P + "signer_nonce", "Next nonce of the signer.", labels=["chain"])
    flight = GaugeMetricFamily(
        P + "signer_in_flight_transactions", "Transactions sent, not final.", labels=["chain"]
    )
    bumps = CounterMetricFamily(
        P + "signer_bumps", "Fee bumps (replacements) sent.", labels=["chain"]
    )
    balance = GaugeMetricFamily(
        P + "wallet_balance_wei", "Balance of the signer's account.", labels=["chain"]
    )
    requests = CounterMetricFamily(
        P + "rpc_requests",
        "JSON-RPC requests to the chain's nodes, retries included.",
        labels=["chain"],
    )
    failures = CounterMetricFamily(
        P + "rpc_failures",
        "JSON-RPC requests that failed (transport, 5xx, malformed).",
        labels=["chain"],
    )
    for name, snap in snapshots.get("signer", []):
        chain = [ctx.redact(str(snap.get("chain") or name.partition(":")[2]))]
        in_flight = snap.get("in_flight")
        if isinstance(in_flight, list | tuple | dict | set):
            in_flight = len(in_flight)
        for family, value in (
            (nonce, snap.get("nonce")),
            (flight, in_flight),
            (bumps, snap.get("bumps")),
            (balance, snap.get("balance_wei")),
            (requests, snap.get("rpc_requests")),
            (failures, snap.get("rpc_failures")),
        ):
            number = num(value)
            if number is not None:
                family.add_metric(chain, number)
    return [nonce, flight, bumps, balance, requests, failures]


def price_cache(snapshots: Snapshots, ctx: Context) -> list[Metric]:
    """Hyperliquid requests, weight, retries, breaker; the cache's hits and misses."""
    snap = first(snapshots, "price_cache")
    requests = CounterMetricFamily(
        P + "hyperliquid_requests",
        "Hyperliquid requests by type and status (or 'error').",
        labels=["type", "status"],
    )
    for (rtype, status), n in sorted(_requests(snap.get("requests")).items()):
        requests.add_metric([ctx.redact(rtype), ctx.redact(status)], n)
    families: list[Metric] = [requests]
    for key, name, doc in _PRICE_CACHE:
        value = num(snap.get(key))
        if value is not None:
            make = GaugeMetricFamily if key in _GAUGE_KEYS else CounterMetricFamily
            families.append(make(P + name, doc, value=value))
    return families


def _requests(raw: Any) -> dict[tuple[str, str], float]:
    """Request counts from any of the documented shapes; anything else gives nothing."""
    found: dict[tuple[str, str], float] = {}

    def add(rtype: Any, status: Any, n: Any) -> None:
        number = num(n)
        if number is not None:
            key = (str(rtype), str(status))
            found[key] = found.get(key, 0.0) + number

    if isinstance(raw, Mapping):
        for key, value in raw.items():
            if isinstance(key, tuple) and len(key) == 2:
                add(key[0], key[1], value)
            elif isinstance(value, Mapping):
                for status, n in value.items():
                    add(key, status, n)
    elif isinstance(raw, list | tuple):
        for item in raw:
            if isinstance(item, list | tuple) and len(item) == 3:
                add(*item)
    return found
