"""10,000 resolver queries over 50 distinct windows through the price cache, against the simulator.

The simulator serves a generated BTC series (wall clock, Hyperliquid's 1200 weight per minute).
Eight "resolver" threads tell ``DataQuery`` messages to ``price_cache`` as fast as they can, all
with ``reply_to`` one counting actor: query ``i`` asks TOKEN_PRICE SNAPSHOT_AT at the ``i % 50``-th
hour (one candle, one page each). The clock runs from the first tell to the last reply.

Goal: upstream requests == distinct windows (everything else coalesced or cached), zero 429s.
Figures come from the simulator's own stats (``/_sim/stats``), not from the code measured.
"""

from __future__ import annotations

import platform
import threading
import time
from typing import Any

from actors.price_cache import PriceCache
from devnet.hl_sim import Dataset, HlSimulator
from protocol.messages import DataAnswer, DataFailed, DataQuery
from protocol.spec import (
    MarketSpec,
    Predicate,
    PredicateOp,
    Subject,
    SubjectKind,
    Window,
    WindowKind,
)
from protocol.supervision import ChildSpec, SupervisorSpec
from sources.hyperliquid import HyperliquidClient
from supervision import Runtime, SupervisedActor, SystemClock

QUERIES = 10_000
WINDOWS = 50
SENDERS = 8
HOUR_S = 3600
CREATOR = "0x0000000000000000000000000000000000000001"


class Tally(SupervisedActor):
    """Counts the replies it is told; keeps the first few failure reasons."""

    def init(self) -> None:
        self.answers = 0
        self.failures: list[str] = []

    def handle(self, message: Any) -> Any:
        match message:
            case DataAnswer():
                self.answers += 1
                return None
            case DataFailed(reason=reason):
                self.failures.append(reason)
                return None
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return {"answers": self.answers, "failed": len(self.failures), "reasons": self.failures[:3]}


def _spec(t_end: int) -> MarketSpec:
    return MarketSpec(
        title="BTC above 1",
        subject=Subject(kind=SubjectKind.TOKEN_PRICE, token_identifier="BTC", value_decimals=2),
        predicate=Predicate(op=PredicateOp.GT, threshold=100),
        window=Window(kind=WindowKind.SNAPSHOT_AT, t_start=t_end, t_end=t_end),
        cutoff_time=t_end,
        creator=CREATOR,
    )


def _send_all(rt: Runtime, queries: list[DataQuery]) -> None:
    """Tell every query from ``SENDERS`` threads at once."""
    chunks = [queries[i::SENDERS] for i in range(SENDERS)]
    go = threading.Event()

    def sender(chunk: list[DataQuery]) -> None:
        go.wait()
        for query in chunk:
            rt.tell("price_cache", query)

    threads = [threading.Thread(target=sender, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join()


def run() -> dict[str, Any]:
    last_hour = int(time.time()) // HOUR_S * HOUR_S - 24 * HOUR_S
    start_ms = (last_hour - 4 * 24 * HOUR_S) * 1000
    dataset = Dataset.generate(["BTC"], start_ms, (last_hour + HOUR_S) * 1000, seed=7)
    windows = [_spec(last_hour - k * HOUR_S) for k in range(WINDOWS)]
    queries = [
        DataQuery(query_id=f"q{i}", spec=windows[i % WINDOWS], reply_to="tally")
        for i in range(QUERIES)
    ]
    tree = SupervisorSpec(
        children=(
            ChildSpec(id="price_cache", actor="price_cache"),
            ChildSpec(id="tally", actor="tally"),
        )
    )
    types = {"price_cache": PriceCache, "tally": Tally}
    with HlSimulator(dataset) as sim, HyperliquidClient(sim.url) as client:
        extra = {"hl_clients": [client]}
        with Runtime(tree, actor_types=types, clock=SystemClock(), extra=extra) as rt:
            began = time.perf_counter()
            _send_all(rt, queries)
            tally = rt.wait_for(
                lambda: (t := rt.state("tally"))["answers"] + t["failed"] == QUERIES and t,
                timeout=300,
                interval=0.001,
            )
            seconds = time.perf_counter() - began
            cache = rt.state("price_cache")
        stats = sim.stats()
    by_status: dict[str, int] = {}
    for per_type in stats["requests"].values():
        for status, n in per_type.items():
            by_status[status] = by_status.get(status, 0) + n
    return {
        "queries": QUERIES,
        "distinct_windows": WINDOWS,
        "upstream_requests": sum(by_status.values()),
        "seconds": round(seconds, 3),
        "weight_spent": sum(stats["weight_by_client"].values()),
        "http_429": by_status.get("429", 0),
        "answered": tally["answers"],
        "failed": tally["failed"],
        "failure_reasons": tally["reasons"],
        "queries_per_s": round(QUERIES / seconds),
        "coalesced": cache["coalesced"],
        "cache_hits": cache["cache_hits"],
        "cache_misses": cache["cache_misses"],
        "actor_upstream_requests": cache["upstream_requests"],
        "actor_weight_spent": cache["weight_spent"],
        "senders": SENDERS,
        "python": platform.python_version(),
    }


def summary(result: dict[str, Any]) -> str:
    return (
        f"pricecache: {result['queries']:,} queries over {result['distinct_windows']} windows in "
        f"{result['seconds']}s ({result['queries_per_s']:,}/s): {result['upstream_requests']} "
        f"upstream requests (goal {result['distinct_windows']}), {result['http_429']} x 429, "
        f"weight {result['weight_spent']}; answered {result['answered']}, failed "
        f"{result['failed']}; coalesced {result['coalesced']}, cache hits {result['cache_hits']}"
    )
