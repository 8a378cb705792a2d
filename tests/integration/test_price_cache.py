"""The price cache actor in the real runtime, against the real simulator over HTTP.

A tiny ``requester`` actor sends nothing itself: the test tells ``DataQuery(reply_to=
"requester")`` to ``price_cache`` and reads what the requester recorded. Where time matters, one
``ManualClock`` drives the actor, the simulator (its rate-limit window and "now") and the client
(each page's fetch time), so a window moves exactly when the test says so. Upstream requests are
counted by the simulator (``GET /_sim/stats``), not by the code under test.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.price_cache import PriceCache, ledger_key
from devnet.hl_sim import Dataset, HlSimulator
from devnet.hl_sim.generate import HOUR_MS
from protocol.evaluation import EvaluationError, evaluate, plan
from protocol.hyperliquid import RawResponse
from protocol.messages import DataAnswer, DataFailed, DataQuery, FailureClass
from protocol.records import SchemaVersion, WeightLedger
from protocol.spec import MarketSpec
from protocol.supervision import ChildSpec, SupervisorSpec
from sources.hl_retry import RetryPolicy
from sources.hyperliquid import HyperliquidClient
from storage import Store
from supervision import ManualClock, Runtime, SupervisedActor
from tests.fixtures import interaction, market

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

DAY_S = 86_400
T0 = 1_700_000_000 - 1_700_000_000 % DAY_S  # 2023-11-14 00:00 UTC, in seconds
GEN_DAYS = 30
KPEPE_NOW = interaction("test_get_candles_snapshot", "candleSnapshot").date_ms / 1000
KPEPE = market("kPEPE", ("SNAPSHOT_AT", 1684782000, 1684782000))  # close 0.001539 (unit tests)

Reply = DataAnswer | DataFailed


class Requester(SupervisedActor):
    """Records every ``DataAnswer`` / ``DataFailed`` it is told, by query id."""

    def init(self) -> None:
        self.got: dict[str, Reply] = {}

    def handle(self, message: Any) -> Any:
        match message:
            case DataAnswer() | DataFailed():
                self.got[message.query_id] = message
                return None
        return self.unhandled(message)

    def snapshot(self) -> Any:
        return dict(self.got)


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def gen1() -> Dataset:
    return Dataset.generate(["BTC"], T0 * 1000, (T0 + GEN_DAYS * DAY_S) * 1000, seed=1)


@pytest.fixture(scope="module")
def gen2() -> Dataset:
    """The same coin and range as ``gen1``, another seed: other prices."""
    return Dataset.generate(["BTC"], T0 * 1000, (T0 + GEN_DAYS * DAY_S) * 1000, seed=2)


@pytest.fixture
def sims() -> Iterator[Callable[..., HlSimulator]]:
    """Start simulators on free ports; every one is stopped at teardown, failed test or not."""
    started: list[HlSimulator] = []

    def start(dataset: Dataset, **kwargs: Any) -> HlSimulator:
        sim = HlSimulator(dataset, **kwargs)
        started.append(sim)
        sim.start()
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., HyperliquidClient]]:
    """Clients without retries (one attempt per page), closed at teardown."""
    made: list[HyperliquidClient] = []

    def make(url: str, clock: ManualClock | None = None) -> HyperliquidClient:
        kwargs: dict[str, Any] = {}
        if clock is not None:
            kwargs["clock_ms"] = lambda: int(clock.now() * 1000)
        client = HyperliquidClient(url, retry=RetryPolicy(max_attempts=1), **kwargs)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            client.close()


@contextlib.contextmanager
def running(
    hl_clients: list[HyperliquidClient], clock: ManualClock, store: Store | None = None, **args: Any
) -> Iterator[Runtime]:
    tree = SupervisorSpec(
        children=(
            ChildSpec(id="price_cache", actor="price_cache", args=args),
            ChildSpec(id="requester", actor="requester"),
        )
    )
    types = {"price_cache": PriceCache, "requester": Requester}
    extra: dict[str, Any] = {"hl_clients": hl_clients}
    if store is not None:
        extra["store"] = store
    with Runtime(tree, actor_types=types, clock=clock, extra=extra) as rt:
        yield rt


def sim_clock(clock: ManualClock) -> Callable[[], int]:
    """The simulator's view (ms) of the runtime's manual clock (s)."""
    return lambda: int(clock.now() * 1000)


def replay(
    sims: Callable[..., HlSimulator], dataset: Dataset, **kwargs: Any
) -> tuple[ManualClock, HlSimulator]:
    """A manual clock just after ``dataset``'s range and a simulator that reads it."""
    clock = ManualClock(start=T0 + GEN_DAYS * DAY_S)
    return clock, sims(dataset, clock=sim_clock(clock), **kwargs)


def send(rt: Runtime, query_id: str, spec: MarketSpec) -> None:
    rt.tell("price_cache", DataQuery(query_id=query_id, spec=spec, reply_to="requester"))


def reply(rt: Runtime, query_id: str, timeout: float = 20.0) -> Reply:
    got: Reply = rt.wait_for(lambda: rt.state("requester").get(query_id), timeout=timeout)
    return got


def replies(rt: Runtime, count: int, timeout: float = 20.0) -> dict[str, Reply]:
    """Every reply, once there are ``count`` of them."""

    def all_in() -> dict[str, Reply] | None:
        got: dict[str, Reply] = rt.state("requester")
        return got if len(got) == count else None

    return rt.wait_for(all_in, timeout=timeout)


def answer(rt: Runtime, query_id: str) -> DataAnswer:
    got = reply(rt, query_id)
    assert isinstance(got, DataAnswer), got
    return got


def failed(rt: Runtime, query_id: str) -> DataFailed:
    got = reply(rt, query_id)
    assert isinstance(got, DataFailed), got
    return got


def upstream(sim: HlSimulator, rtype: str | None = None, status: int | None = None) -> int:
    """Requests the simulator answered (over HTTP: ``GET /_sim/stats``), by type and status."""
    stats = httpx.get(f"{sim.url}/_sim/stats", timeout=5).json()["requests"]
    return sum(
        n
        for t, by_status in stats.items()
        if rtype in (None, t)
        for s, n in by_status.items()
        if status in (None, int(s))
    )


def price(hours_after_t0: int) -> MarketSpec:
    t = T0 + hours_after_t0 * HOUR_MS // 1000
    return market("BTC", ("SNAPSHOT_AT", t, t))


# --- answers ------------------------------------------------------------------------------------


def test_token_price_on_the_recorded_kpepe_candles(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient]
) -> None:
    clock = ManualClock(start=KPEPE_NOW)
    with running([clients(hl_sim.url)], clock) as rt:
        send(rt, "q1", KPEPE)
        got = answer(rt, "q1")
        state = rt.state("price_cache")
    # The value is the evaluator's on exactly the pages returned (the resolver's proof check).
    assert got.value == evaluate(KPEPE, got.responses).value == Decimal("0.001539")
    # and the whole evaluation, which the resolver takes instead of evaluating again
    assert got.evaluation == evaluate(KPEPE, got.responses)
    assert got.sources == ("primary",)
    assert [r.request for r in got.responses] == list(plan(KPEPE, int(KPEPE_NOW * 1000)).requests)
    assert got.responses[0].url == f"{hl_sim.url}/info"
    assert upstream(hl_sim) == upstream(hl_sim, "candleSnapshot", 200) == 1
    assert state["upstream_requests"] == 1 and state["answered"] == 1


def test_100_identical_concurrent_queries_make_one_upstream_request(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient]
) -> None:
    # The simulator answers after 500 ms: all 100 tells arrive while the one fetch is out.
    hl_sim.set_faults(latency_ms=500)
    with running([clients(hl_sim.url)], ManualClock(start=KPEPE_NOW)) as rt:
        for i in range(100):
            send(rt, f"q{i}", KPEPE)
        got = replies(rt, 100)
        state = rt.state("price_cache")
    assert all(isinstance(g, DataAnswer) for g in got.values())
    assert {g.value for g in got.values()} == {Decimal("0.001539")}
    first = got["q0"].responses
    assert len(first) == 1 and all(g.responses == first for g in got.values())
    assert upstream(hl_sim) == 1
    assert state["queries"] == 100 and state["upstream_requests"] == 1
    assert state["coalesced"] == 99 and state["cache_misses"] == 1


# --- caching ------------------------------------------------------------------------------------


def test_closed_history_is_cached_without_expiry(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient]
) -> None:
    clock = ManualClock(start=KPEPE_NOW)
    with running([clients(hl_sim.url)], clock, live_ttl_s=5) as rt:
        send(rt, "first", KPEPE)
        first = answer(rt, "first")
        clock.advance(DAY_S)  # far past any TTL
        send(rt, "later", KPEPE)
        later = answer(rt, "later")
        state = rt.state("price_cache")
    assert later.responses == first.responses and later.value == first.value
    assert upstream(hl_sim) == 1
    assert (state["cache_misses"], state["cache_hits"], state["upstream_requests"]) == (1, 1, 1)


def test_a_live_value_is_cached_only_for_its_ttl(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    t_end = T0 + 2 * DAY_S
    clock = ManualClock(start=t_end + 10)
    sim = sims(gen1, clock=sim_clock(clock))
    spec = market("BTC", ("SNAPSHOT_AT", t_end, t_end), metric="open_interest")
    with running([clients(sim.url, clock)], clock, live_ttl_s=5) as rt:
        send(rt, "q1", spec)
        first = answer(rt, "q1")
        clock.advance(4.5)
        send(rt, "q2", spec)
        within_ttl = answer(rt, "q2")
        hits_then = upstream(sim, "metaAndAssetCtxs")
        clock.advance(0.5)  # 5 s after the fetch: expired
        send(rt, "q3", spec)
        after_ttl = answer(rt, "q3")
        state = rt.state("price_cache")
    assert within_ttl.responses == first.responses and hits_then == 1
    assert after_ttl.responses != first.responses
    assert after_ttl.responses[0].fetched_at_ms == (t_end + 15) * 1000
    assert after_ttl.value == evaluate(spec, after_ttl.responses).value
    assert upstream(sim, "metaAndAssetCtxs") == 2
    assert (state["cache_misses"], state["cache_hits"]) == (2, 1)


# --- weight budget ------------------------------------------------------------------------------


def test_the_budget_queues_instead_of_earning_a_429(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    """Simulator limit 100 per minute; budget 100 - 10% = 90: four candle requests (20 each) per
    minute. Twelve distinct queries drain over three windows, as the manual clock moves them."""
    clock, sim = replay(sims, gen1, weight_limit=100)
    args = {"weight_per_minute": 100, "headroom_pct": 10, "queue_timeout_s": 600}
    with running([clients(sim.url, clock)], clock, **args) as rt:
        for i in range(12):
            send(rt, f"q{i}", price(i + 1))

        def answered() -> int:
            return len(rt.state("requester"))

        rt.wait_for(lambda: answered() == 4)
        first_window = rt.state("price_cache")
        clock.advance(59.5)  # no weight has rolled out yet: nothing moves
        assert rt.state("price_cache")["queued"] == 8 and answered() == 4
        clock.advance(0.5)
        rt.wait_for(lambda: answered() == 8)
        second_window = rt.state("price_cache")
        clock.advance(60)
        rt.wait_for(lambda: answered() == 12)
        got = rt.state("requester")
        state = rt.state("price_cache")
    assert (first_window["weight_in_window"], first_window["queued"]) == (80, 8)
    assert (second_window["weight_in_window"], second_window["queued"]) == (80, 4)
    assert second_window["weight_spent"] == 160
    assert all(isinstance(g, DataAnswer) for g in got.values())
    assert upstream(sim, status=429) == 0
    assert upstream(sim, "candleSnapshot", 200) == 12 == state["upstream_requests"]
    assert state["queued"] == 0


def test_a_restart_keeps_to_the_minute_the_last_process_spent(
    sims: Callable[..., HlSimulator],
    clients: Callable[..., HyperliquidClient],
    gen1: Dataset,
    tmp_path: Path,
) -> None:
    """Four candle requests (80 of the budget's 90) before a stop; after the restart (new
    clients, new actor, the same LMDB) the next four wait for that minute to roll out."""
    clock, sim = replay(sims, gen1, weight_limit=100)
    args = {"weight_per_minute": 100, "headroom_pct": 10, "queue_timeout_s": 600}
    with Store.open(tmp_path / "data") as store:
        with running([clients(sim.url, clock)], clock, store, **args) as rt:
            for i in range(4):
                send(rt, f"q{i}", price(i + 1))
            replies(rt, 4)
        clock.advance(5)
        client = clients(sim.url, clock)
        with running([client], clock, store, **args) as rt:
            assert rt.state("price_cache")["weight_in_window"] == 80
            for i in range(4, 8):
                send(rt, f"q{i}", price(i + 1))
            rt.wait_for(lambda: rt.state("price_cache")["queued"] == 4)
            clock.advance(55)  # the first minute rolls out
            got = replies(rt, 4)
        saved = store.get("meta", ledger_key(client.url), WeightLedger)
    assert all(isinstance(g, DataAnswer) for g in got.values())
    assert upstream(sim, status=429) == 0
    assert saved is not None and sum(w for _, w in saved.spent) == 80  # the second minute's


def test_the_ledger_is_written_before_pages_are_sent_and_after_their_items(
    sims: Callable[..., HlSimulator],
    clients: Callable[..., HyperliquidClient],
    gen1: Dataset,
    tmp_path: Path,
) -> None:
    """No stop and no clock tick: while the pages are still at a slow simulator the stored
    ledger already holds their base weight (a SIGKILL now would forget nothing sent), and
    once answered it holds what their items cost too (what the simulator charged)."""
    clock, sim = replay(sims, gen1)
    sim.set_faults(latency_ms=2000)
    client = clients(sim.url, clock)

    def stored() -> int:
        saved = store.get("meta", ledger_key(client.url), WeightLedger)
        return 0 if saved is None else sum(w for _, w in saved.spent)

    funding = market("BTC", ("WINDOW_SUM", T0, T0 + 25 * DAY_S), metric="funding")
    with Store.open(tmp_path / "data") as store, running([client], clock, store) as rt:
        send(rt, "q0", price(1))
        send(rt, "q1", funding)
        rt.wait_for(lambda: rt.state("price_cache")["in_flight"] == 2)
        assert stored() == 40  # two pages of base weight 20, both still unanswered
        assert upstream(sim) == 0
        replies(rt, 2)
        charged = httpx.get(f"{sim.url}/_sim/stats").json()["weight_by_client"]["127.0.0.1"]
        state = rt.state("price_cache")
        assert charged > 3 * 20  # funding's second page and its 500 rows' items
        assert stored() == charged == state["weight_in_window"]
        assert state["ledger_writes"] >= 2 and state["ledger_save_failures"] == 0


def test_a_ledger_that_cannot_be_written_does_not_stop_the_answers(
    sims: Callable[..., HlSimulator],
    clients: Callable[..., HyperliquidClient],
    gen1: Dataset,
    tmp_path: Path,
) -> None:
    clock, sim = replay(sims, gen1)
    store = Store.open(tmp_path / "data")
    with running([clients(sim.url, clock)], clock, store) as rt:
        store.close()  # every write now fails with a StorageError
        send(rt, "q", price(1))
        assert answer(rt, "q").value is not None
        state = rt.state("price_cache")
        assert state["ledger_save_failures"] >= 1 and state["ledger_writes"] == 0
        assert rt.restarts("price_cache") == 0


def test_a_saved_ledger_that_does_not_decode_is_ignored(
    sims: Callable[..., HlSimulator],
    clients: Callable[..., HyperliquidClient],
    gen1: Dataset,
    tmp_path: Path,
) -> None:
    clock, sim = replay(sims, gen1)
    client = clients(sim.url, clock)
    with Store.open(tmp_path / "data") as store:
        store.put("meta", ledger_key(client.url), SchemaVersion(version=1))
        with running([client], clock, store) as rt:
            assert rt.state("price_cache")["weight_in_window"] == 0
            send(rt, "q", price(1))
            assert answer(rt, "q").value is not None
            assert rt.restarts("price_cache") == 0
        saved = store.get("meta", ledger_key(client.url), WeightLedger)
    assert saved is not None and sum(w for _, w in saved.spent) == 20  # replaced at stop


def test_without_the_budget_the_same_load_earns_429s(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    """The control for the test above: the same simulator and queries, a budget far above the
    simulator's limit. Five requests fit its 100; the rest are refused."""
    clock, sim = replay(sims, gen1, weight_limit=100)
    args = {"weight_per_minute": 100_000, "breaker_failures": 100}
    with running([clients(sim.url, clock)], clock, **args) as rt:
        for i in range(12):
            send(rt, f"q{i}", price(i + 1))
        got = replies(rt, 12)
    refused = [g for g in got.values() if isinstance(g, DataFailed)]
    assert len(refused) == 7 and upstream(sim, status=429) == 7
    assert all(g.failure is FailureClass.TRANSIENT and "429" in g.reason for g in refused)


def test_pages_are_charged_base_before_and_per_item_after(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    """Funding over 25 days is 600 hourly rows: two pages (500 + the rest). Each is fetched
    through the budget; the weight the actor counts is the weight the simulator charged."""
    clock, sim = replay(sims, gen1)
    spec = market("BTC", ("WINDOW_SUM", T0, T0 + 25 * DAY_S), metric="funding")
    with running([clients(sim.url, clock)], clock) as rt:
        send(rt, "q", spec)
        got = answer(rt, "q")
        state = rt.state("price_cache")
    assert len(got.responses) == 2 == upstream(sim, "fundingHistory", 200)
    assert got.value == evaluate(spec, got.responses).value
    charged = httpx.get(f"{sim.url}/_sim/stats").json()["weight_by_client"]["127.0.0.1"]
    rows = [len(json.loads(r.body)) for r in got.responses]
    assert rows[0] == 500
    assert state["weight_spent"] == charged == sum(20 + n // 20 for n in rows)
    assert state["weight_in_window"] == charged  # the clock has not moved
    assert state["requests"] == {"fundingHistory": {"200": 2}}


# --- circuit breaker ------------------------------------------------------------------------------


def test_a_page_that_waits_too_long_for_weight_fails_transient(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    clock, sim = replay(sims, gen1, weight_limit=100)
    args = {"weight_per_minute": 100, "queue_timeout_s": 30}
    with running([clients(sim.url, clock)], clock, **args) as rt:
        for i in range(5):
            send(rt, f"q{i}", price(i + 1))
        replies(rt, 4)
        clock.advance(29.5)
        assert rt.state("price_cache")["queued"] == 1
        clock.advance(0.5)
        late = failed(rt, "q4")
        state = rt.state("price_cache")
    assert late.failure is FailureClass.TRANSIENT
    assert late.reason == "primary: no request weight free within 30s (budget queue)"
    assert state["queued"] == 0 and upstream(sim) == 4


def test_breaker_opens_fails_fast_and_a_trial_closes_it(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient]
) -> None:
    hl_sim.set_faults(p_5xx=1.0)
    clock = ManualClock(start=KPEPE_NOW)
    args = {"breaker_failures": 3, "breaker_cooldown_s": 30}
    with running([clients(hl_sim.url)], clock, **args) as rt:
        for i in range(3):
            send(rt, f"down{i}", KPEPE)
            assert "HTTP 503" in failed(rt, f"down{i}").reason
        assert upstream(hl_sim) == 3
        send(rt, "fast", KPEPE)
        fast = failed(rt, "fast")
        clock.advance(29.5)
        send(rt, "still", KPEPE)
        still = failed(rt, "still")
        assert upstream(hl_sim) == 3  # neither reached the simulator
        assert rt.state("price_cache")["breakers"]["primary"] == "open"

        clock.advance(0.5)  # cooldown over: one trial goes, fails, and opens it again
        send(rt, "trial1", KPEPE)
        assert "HTTP 503" in failed(rt, "trial1").reason
        send(rt, "reopened", KPEPE)
        reopened = failed(rt, "reopened")
        assert upstream(hl_sim) == 4

        clock.advance(30)
        hl_sim.set_faults(p_5xx=0.0)
        send(rt, "trial2", KPEPE)
        healed = answer(rt, "trial2")
        state = rt.state("price_cache")
    for got in (fast, still, reopened):
        assert got.failure is FailureClass.TRANSIENT and got.reason.startswith("circuit open")
    assert healed.value == Decimal("0.001539")
    assert state["breakers"]["primary"] == "closed" and state["sources"]["primary"]["failures"] == 4
    assert upstream(hl_sim, status=503) == 4 and upstream(hl_sim, status=200) == 1


def test_an_open_primary_fails_fast_without_waiting_for_the_fallback(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    clock, primary = replay(sims, gen1)
    fallback = sims(gen1, clock=sim_clock(clock))
    primary.set_faults(p_5xx=1.0)
    hl = [clients(primary.url, clock), clients(fallback.url, clock)]
    with running(hl, clock, breaker_failures=1) as rt:
        send(rt, "trip", price(1))
        assert "HTTP 503" in failed(rt, "trip").reason
        rt.wait_for(lambda: rt.state("price_cache")["in_flight"] == 0)
        fallback.set_faults(latency_ms=3000)
        send(rt, "fast", price(2))
        fast = failed(rt, "fast")
        state = rt.state("price_cache")
    assert fast.failure is FailureClass.TRANSIENT
    assert fast.reason.startswith("circuit open: primary")
    assert state["in_flight"] == 1  # answered while the fallback's page is still out
    assert upstream(primary) == 1


# --- fallback cross-check ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("same_data", "tolerance", "expect"),
    [
        (False, "0", "disagree"),
        (True, "0", "agree"),
        (False, "1", "agree"),  # 100% relative tolerance: any two positive prices agree
    ],
)
def test_fallback_cross_check(
    sims: Callable[..., HlSimulator],
    clients: Callable[..., HyperliquidClient],
    gen1: Dataset,
    gen2: Dataset,
    same_data: bool,
    tolerance: str,
    expect: str,
) -> None:
    clock, primary = replay(sims, gen1)
    fallback = sims(gen1 if same_data else gen2, clock=sim_clock(clock))
    hl = [clients(primary.url, clock), clients(fallback.url, clock)]
    spec = price(7)
    with running(hl, clock, tolerance=tolerance) as rt:
        send(rt, "q", spec)
        got = reply(rt, "q")
        state = rt.state("price_cache")
    assert upstream(primary) == upstream(fallback) == 1  # the same plan, asked of both
    if expect == "disagree":
        assert isinstance(got, DataFailed) and got.failure is FailureClass.TRANSIENT
        assert got.reason.startswith("sources disagree") and state["disagreements"] == 1
        return
    assert isinstance(got, DataAnswer) and got.sources == ("primary", "fallback")
    assert {r.url for r in got.responses} == {f"{primary.url}/info"}  # the primary's pages
    assert got.value == evaluate(spec, got.responses).value
    assert state["disagreements"] == 0


def test_a_fallback_that_is_down_leaves_the_primary_alone(
    sims: Callable[..., HlSimulator], clients: Callable[..., HyperliquidClient], gen1: Dataset
) -> None:
    clock, primary = replay(sims, gen1)
    fallback = sims(gen1, clock=sim_clock(clock))
    fallback.set_faults(p_5xx=1.0)
    hl = [clients(primary.url, clock), clients(fallback.url, clock)]
    with running(hl, clock, breaker_failures=1) as rt:
        send(rt, "errors", price(1))  # the fallback answers 503: its breaker opens
        by_error = answer(rt, "errors")
        send(rt, "open", price(2))  # the fallback is not even asked
        by_breaker = answer(rt, "open")
        state = rt.state("price_cache")
    for got, spec in ((by_error, price(1)), (by_breaker, price(2))):
        assert got.sources == ("primary",)
        assert got.value == evaluate(spec, got.responses).value
    assert upstream(fallback) == 1 and upstream(primary) == 2
    assert state["fallback_unavailable"] == 2 and state["breakers"]["fallback"] == "open"


# --- permanent failures ------------------------------------------------------------------------


def test_unsupported_subject_fails_permanently_at_once(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient]
) -> None:
    spec = market("BTC", ("WINDOW_SUM", 1684778400, 1684782000))  # a price has no window sum
    with pytest.raises(EvaluationError) as expected:
        plan(spec, int(KPEPE_NOW * 1000))
    with running([clients(hl_sim.url)], ManualClock(start=KPEPE_NOW)) as rt:
        send(rt, "q", spec)
        got = failed(rt, "q")
    assert got.failure is FailureClass.PERMANENT and got.reason == expected.value.reason
    assert "unsupported subject and window" in got.reason
    assert upstream(hl_sim) == 0


def test_no_data_fails_permanently_with_the_evaluators_reason(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient]
) -> None:
    spec = market("NOPE", ("SNAPSHOT_AT", 1684782000, 1684782000))
    request = plan(spec, int(KPEPE_NOW * 1000)).requests[0]
    empty = RawResponse(request=request, url="u", fetched_at_ms=10**13, status=200, body=b"[]")
    with pytest.raises(EvaluationError) as expected:
        evaluate(spec, [empty])
    with running([clients(hl_sim.url)], ManualClock(start=KPEPE_NOW)) as rt:
        send(rt, "q", spec)
        got = failed(rt, "q")
    assert got.failure is FailureClass.PERMANENT and got.reason == expected.value.reason
    assert "no 1h candles of NOPE" in got.reason
    assert upstream(hl_sim, "candleSnapshot", 200) == 1


@pytest.mark.parametrize("fault", ["p_malformed", "p_truncated"])
def test_a_malformed_body_fails_transient_and_says_so(
    hl_sim: HlSimulator, clients: Callable[..., HyperliquidClient], fault: str
) -> None:
    """Not JSON, or cut in half: no value, a transient failure naming it (the market is retried
    within its budget, ADR 0012); the source answered, so its breaker does not count it."""
    hl_sim.set_faults(**{fault: 1.0})
    with running([clients(hl_sim.url)], ManualClock(start=KPEPE_NOW)) as rt:
        send(rt, "q", KPEPE)
        got = failed(rt, "q")
        state = rt.state("price_cache")
    assert got.failure is FailureClass.TRANSIENT and "malformed response" in got.reason
    assert state["breakers"]["primary"] == "closed"
