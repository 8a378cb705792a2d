"""PriceCache: answers every resolver's ``DataQuery`` from Hyperliquid, cheaply and carefully.

One query, top to bottom (``handle`` never blocks: HTTP happens on a thread pool)::

    DataQuery --plan() raises-----------------------------------------> DataFailed (at once)
              --per source, the planned requests' series:
                  all cached (history: for ever; live: live_ttl_s)-----> that source is done
                  the same fetch already in flight---------------------> joins it (coalesced)
                  else a new fetch: each missing series' first page----> the source's budget queue
    queued page --breaker open--------------------------------------> fetch fails "circuit open"
                --queued past queue_timeout_s, or the queue full------> fetch fails (transient)
                --window has room + a worker free + breaker admits---> in flight on the pool
    in flight --_PageDone page--> next_page(): another page queued | series done (and cached)
              --_PageDone error--> fetch fails (the breaker counts transient errors)
    every source done, or the primary failed --> decide:
        primary failed or does not evaluate ---------> DataFailed (classified)
        no fallback; or it failed, is open, or cannot
        evaluate (counted: fallback_unavailable) -----> DataAnswer(sources=("primary",))
        values differ by more than ``tolerance`` -----> DataFailed TRANSIENT "sources disagree"
        values agree --------------------------------> DataAnswer(sources=("primary", "fallback"))

The answer's ``responses`` are the primary's pages, exactly those the value came from, so the
resolver's own ``evaluate(spec, answer.responses)`` gives the same value. Every source has its
own weight budget (Hyperliquid limits per IP) and circuit breaker; budget waits are driven by
the actor's clock (``send_later``), so a ``ManualClock`` test decides when the window moves.

Args (all optional): ``weight_per_minute`` (1200), ``headroom_pct`` (10), ``live_ttl_s`` (5),
``tolerance`` ("0": relative, ``|a-b| <= tolerance * max(|a|, |b|)``), ``workers`` (8),
``breaker_failures`` (5), ``breaker_cooldown_s`` (30), ``closed_margin_s`` (60: how long after its
end a history request counts as closed), ``queue_timeout_s`` (120), ``queue_limit`` (10000 per
source), ``cache_entries`` (10000, LRU), ``max_pages`` (100). Services: ``extra["hl_clients"]``,
a list of ``HyperliquidClient``: the primary, then at most one fallback; ``extra["store"]``
(optional): each source's weight spent in the last minute is written there (``meta``) and read
back at start, so a restarted runner keeps to the limit. The ledger is written ahead: pages
leave for the pool only after a ledger holding their base weight is durable (one write per pump
round that sends any), and what a page cost beyond its base (items, client retries) is written
as soon as its report is handled. A SIGKILL therefore forgets only that extra weight of pages
answered but not yet reported, never the weight of a request it sent (ADR 0008).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from decimal import Decimal, localcontext
from typing import Any, ClassVar

import pykka

from protocol.evaluation import Evaluation, EvaluationError, evaluate, next_page, plan
from protocol.hyperliquid import InfoRequest, RawResponse
from protocol.messages import DataAnswer, DataFailed, DataQuery, FailureClass
from protocol.records import WeightLedger
from protocol.spec import MarketSpec, OracleSpec, Subject, Window
from sources.circuit import BreakerState, CircuitBreaker, Ticket
from sources.hl_weights import base_weight, response_weight
from sources.http_errors import MalformedResponse, PermanentSourceError, TransientSourceError
from sources.hyperliquid import HyperliquidClient
from sources.weight_budget import WeightBudget
from storage import StorageError, Store, Txn
from supervision import SupervisedActor

log = logging.getLogger(__name__)

PRIMARY, FALLBACK = "primary", "fallback"
HISTORY_TYPES = frozenset({"candleSnapshot", "fundingHistory", "userFillsByTime", "userFunding"})
"""Request types over a time range: once the range is closed, their answer never changes."""

TRANSIENT, PERMANENT = FailureClass.TRANSIENT, FailureClass.PERMANENT


# --- the actor's own messages ---------------------------------------------------------------


@dataclass(frozen=True)
class _PageDone:
    """A worker's report: the page of ``job`` as received, or why there is none."""

    kind: ClassVar[str] = "price_cache_page_done"
    source: str
    job: _Job
    ticket: Ticket
    page: RawResponse | None
    failure: _Failure | None
    client_spent: int
    """The client's total weight spent, read after this call (retries included)."""


@dataclass(frozen=True)
class _Pump:
    """A timer: the budget window may have room now, or queued pages may have waited too long."""

    kind: ClassVar[str] = "price_cache_pump"
    source: str


class PriceCache(SupervisedActor):
    # --- start -----------------------------------------------------------------------------

    def init(self) -> None:
        self.config = _Config.from_args(self.ctx.args)
        clients = list(self.services.extra.get("hl_clients") or ())
        if not 1 <= len(clients) <= 2:
            raise ValueError(
                f"price_cache needs services.extra['hl_clients']: a primary client and at most "
                f"one fallback (got {len(clients)})"
            )
        self.sources = [
            _Source.make(name, client, self.config)
            for name, client in zip((PRIMARY, FALLBACK), clients, strict=False)
        ]
        self.by_name = {source.name: source for source in self.sources}
        self.cache = _Cache(self.config.cache_entries)
        self.fetches: dict[_FetchKey, _Fetch] = {}
        self.in_flight = 0
        self.counts: Counter[str] = Counter()
        self.pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix=f"{self.name}-io")
        self.store: Store | None = self.services.extra.get("store")
        self.saved: dict[str, tuple[tuple[int, int], ...]] = {}
        self.ledger_dirty = False
        """Weight was charged after the fact (items, retries) and is not written yet."""
        self._restore_ledgers()

    def handle(self, message: Any) -> Any:
        match message:
            case DataQuery():
                self._query(message)
            case _PageDone():
                self._page_done(message)
            case _Pump(source=name):
                if name in self.by_name:
                    self.by_name[name].timer_due = None
                self._pump()
            case _:
                return self.unhandled(message)
        return None

    def terminate(self) -> None:
        """Save the weight ledgers; stop the pool without waiting: a call in flight ends within
        its client's timeouts and its report goes nowhere; queries not answered are retried by
        their resolvers."""
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        if getattr(self, "store", None) is not None:
            self._save_ledgers()

    # --- the weight ledgers: a restart keeps to the minute the last process spent ---------

    def _restore_ledgers(self) -> None:
        if self.store is None:
            return
        now = self.clock.now()
        for source in self.sources:
            try:
                saved = self.store.get("meta", ledger_key(source.client.url), WeightLedger)
            except StorageError as exc:  # a bad stored value: start counting afresh, say so
                log.warning("%s: weight ledger of %s not read: %s", self.name, source.name, exc)
                continue
            if saved is not None:
                restored = source.budget.restore(saved.spent, now)
                self.saved[source.name] = saved.spent
                if restored:
                    log.info("%s: %s spent %d weight this minute", self.name, source.name, restored)

    def _save_ledgers(self) -> None:
        """Write each source's ledger that changed since it was last written (a failure is
        logged, counted and retried in the next round: the ledger is never worth a crash)."""
        self.ledger_dirty = False
        if self.store is None:
            return
        now = self.clock.now()
        puts = []
        for source in self.sources:
            ledger = source.budget.ledger(now)
            if ledger != self.saved.get(source.name, ()):
                record = WeightLedger(url=source.client.url, spent=ledger)
                puts.append((source, ledger, record))
        if not puts:
            return

        def save(txn: Txn) -> None:
            for source, _, record in puts:
                txn.put("meta", ledger_key(source.client.url), record)

        try:
            self.store.write(save)
        except StorageError as exc:  # only advisory: the next save tries again
            self.counts["ledger_save_failures"] += 1
            self.ledger_dirty = True  # tried again in the next round
            log.warning("%s: weight ledgers not saved: %s", self.name, exc)
            return
        self.counts["ledger_writes"] += 1
        for source, ledger, _ in puts:
            self.saved[source.name] = ledger

    # --- a query arrives -------------------------------------------------------------------

    def _query(self, message: DataQuery) -> None:
        self.counts["queries"] += 1
        now = self.clock.now()
        try:
            planned = plan(message.spec, _ms(now))
        except EvaluationError as exc:
            self._fail(message, _Failure.of_evaluation(exc))
            return
        query = _Query(message, expected=len(self.sources))
        joined = False
        for source in self.sources:
            fetch, coalesced = self._fetch_for(source, planned.requests, message.spec, now)
            joined = joined or coalesced
            if fetch.outcome is None:
                fetch.waiters.append(query)
            else:
                query.results[source.name] = fetch.outcome
        self.counts["coalesced"] += joined
        self._decide_if_ready(query)
        self._pump()

    def _fetch_for(
        self, source: _Source, requests: tuple[InfoRequest, ...], spec: MarketSpec, now: float
    ) -> tuple[_Fetch, bool]:
        """The fetch answering ``requests`` from ``source``: in flight (joined), or new."""
        key = (source.name, tuple(request.cache_key() for request in requests))
        running = self.fetches.get(key)
        if running is not None:
            source.counts["coalesced"] += 1
            return running, True
        fetch = _Fetch(key, source, [_Series(request) for request in requests])
        not_before_ms = spec.window.t_end * 1000
        for series in fetch.series:
            cached = self.cache.get((source.name, series.first.cache_key()), now, not_before_ms)
            if cached is not None:
                self.counts["cache_hits"] += 1
                series.pages, series.done = list(cached), True
            elif fetch.outcome is None:
                self.counts["cache_misses"] += 1
                self._enqueue(fetch, series, series.first, now)
        if fetch.outcome is None and fetch.all_done():
            fetch.outcome = fetch.pages()
        elif fetch.outcome is None:
            self.fetches[key] = fetch
        return fetch, False

    def _enqueue(self, fetch: _Fetch, series: _Series, request: InfoRequest, now: float) -> None:
        series.asked.add(request.cache_key())
        budget = fetch.source.budget
        if not budget.enqueue(_Job(fetch, series, request), base_weight(request.type), now):
            reason = f"{fetch.source.name}: weight budget queue full ({len(budget)} waiting)"
            self._finish(fetch, _Failure(TRANSIENT, reason))

    # --- queued pages go out: budget, breaker, workers -------------------------------------

    def _pump(self) -> None:
        """Dispatch what the budgets, breakers and workers allow, the ledger written first."""
        now = self.clock.now()
        outgoing: list[tuple[_Source, _Job, Ticket]] = []
        progressed = True
        while progressed:
            progressed = any([self._dispatch(source, now, outgoing) for source in self.sources])
        if outgoing or self.ledger_dirty:
            self._save_ledgers()  # their base weight is durable before they are sent
        for source, job, ticket in outgoing:
            self.pool.submit(_fetch_page, source, job, ticket, self.actor_ref)
        for source in self.sources:
            self._drop_waiting(source, now)
            self._arm_timer(source, now)

    def _drop_waiting(self, source: _Source, now: float) -> None:
        """Fail what may not wait any longer: pages queued too long, or behind an open breaker."""
        timeout = self.config.queue_timeout_s
        for job in source.budget.expire(now, timeout):
            reason = f"{source.name}: no request weight free within {timeout:g}s (budget queue)"
            self._finish(job.fetch, _Failure(TRANSIENT, reason))
        if len(source.budget) and source.breaker.state(now) is BreakerState.OPEN:
            reason = (
                f"circuit open: {source.name} failed {source.breaker.failures} times in a row; "
                f"next trial in {source.breaker.retry_in(now):.1f}s"
            )
            for job in source.budget.remove(lambda job: True):
                self._finish(job.fetch, _Failure(TRANSIENT, reason))

    def _dispatch(
        self, source: _Source, now: float, outgoing: list[tuple[_Source, _Job, Ticket]]
    ) -> bool:
        """Take the source's next queued page (charged, into ``outgoing``) if the budget, the
        breaker and a worker allow."""
        if self.in_flight >= self.config.workers:
            return False
        budget = source.budget
        while (job := budget.head()) is not None and job.fetch.outcome is not None:
            budget.remove_head()  # its fetch already failed
        if job is None or budget.head_wait_s(now):
            return False
        ticket = source.breaker.admit(now)
        if ticket is None:
            return False  # a half-open trial is out: its result decides
        budget.take(now)
        self.in_flight += 1
        source.counts["requests"] += 1
        outgoing.append((source, job, ticket))
        return True

    def _arm_timer(self, source: _Source, now: float) -> None:
        """Come back when the head of the queue fits the window, or the oldest page times out."""
        wait = source.budget.head_wait_s(now)
        oldest = source.budget.oldest_queued_at()
        if wait is None or oldest is None:
            return
        delay = oldest + self.config.queue_timeout_s - now
        if wait > 0:
            delay = min(delay, wait)
        due = now + max(delay, 0.001)
        if source.timer_due is not None and source.timer_due <= due:
            return
        source.timer_due = due
        self.send_later(due - now, self.name, _Pump(source=source.name))

    # --- a page comes back -----------------------------------------------------------------

    def _page_done(self, done: _PageDone) -> None:
        self.in_flight -= 1
        source = self.by_name[done.source]
        now = self.clock.now()
        before = source.budget.charged_total
        if done.page is not None:
            source.budget.charge(_item_weight(done.page), now)
        source.budget.catch_up(done.client_spent - source.baseline, now)
        self.ledger_dirty |= source.budget.charged_total != before
        if done.failure is not None and done.failure.counts:
            source.counts["failures"] += 1
            source.breaker.failed(done.ticket, now)
        else:
            source.breaker.succeeded(done.ticket)
        fetch = done.job.fetch
        if fetch.outcome is None and done.failure is not None:
            self._finish(fetch, done.failure)
        elif fetch.outcome is None and done.page is not None:
            self._paged(done.job, done.page, now)
        self._pump()

    def _paged(self, job: _Job, page: RawResponse, now: float) -> None:
        fetch, series = job.fetch, job.series
        series.pages.append(page)
        following = _next_page(job.request, page.body)
        if following is not None:
            if following.cache_key() in series.asked or len(series.pages) >= self.config.max_pages:
                reason = (
                    f"{fetch.source.name}: paging of {series.first.cache_key()} does not advance "
                    f"or exceeds {self.config.max_pages} pages"
                )
                self._finish(fetch, _Failure(PERMANENT, reason))
            else:
                self._enqueue(fetch, series, following, now)
            return
        series.done = True
        expires = self._expiry(series.first, now)
        if expires is not None:
            key = (fetch.source.name, series.first.cache_key())
            self.cache.put(key, tuple(series.pages), expires)
        if fetch.all_done():
            self._finish(fetch, fetch.pages())

    def _expiry(self, request: InfoRequest, now: float) -> float | None:
        """When a series' cached pages expire: never (inf) for closed history, ``live_ttl_s``
        from now for anything else (live data, history still open); None: not cached."""
        end_ms = _history_end_ms(request)
        if end_ms is not None and end_ms < _ms(now - self.config.closed_margin_s):
            return math.inf
        return now + self.config.live_ttl_s if self.config.live_ttl_s > 0 else None

    def _finish(self, fetch: _Fetch, outcome: _Outcome) -> None:
        """The fetch is over (pages or a failure): tell every query waiting for it."""
        if fetch.outcome is not None:
            return  # already over: a second failure of the same fetch changes nothing
        fetch.outcome = outcome
        if self.fetches.get(fetch.key) is fetch:
            del self.fetches[fetch.key]
        waiters, fetch.waiters = fetch.waiters, []
        for query in waiters:
            query.results[fetch.source.name] = outcome
            self._decide_if_ready(query)

    # --- every source answered (or the primary failed): decide -----------------------------

    def _decide_if_ready(self, query: _Query) -> None:
        """Decide once every source is in, or as soon as the primary fails: the answer is then
        a DataFailed whatever the fallback says, so it does not wait for the fallback."""
        primary = query.results.get(PRIMARY)
        if query.decided or primary is None:
            return
        failed = isinstance(primary, _Failure) or isinstance(
            primary.evaluation(query.message.spec), _Failure
        )
        if failed or len(query.results) == query.expected:
            query.decided = True
            self._decide(query)

    def _decide(self, query: _Query) -> None:
        message = query.message
        primary = query.results[PRIMARY]
        if isinstance(primary, _Failure):
            self._fail(message, primary)
            return
        evaluation = primary.evaluation(message.spec)
        if isinstance(evaluation, _Failure):
            self._fail(message, evaluation)
            return
        value = evaluation.value
        if FALLBACK not in query.results:
            self._answer(message, primary, evaluation, (PRIMARY,))
            return
        fallback = query.results[FALLBACK]
        other = fallback.value(message.spec) if isinstance(fallback, _Pages) else fallback
        if isinstance(other, _Failure):
            # Choice: a fallback that is down (breaker open, errors) or cannot evaluate does not
            # hold the value back; the answer says that only the primary vouches for it.
            self.counts["fallback_unavailable"] += 1
            log.warning("%s: %s: fallback: %s", self.name, message.query_id, other.reason)
            self._answer(message, primary, evaluation, (PRIMARY,))
        elif _agree(value, other, self.config.tolerance):
            self._answer(message, primary, evaluation, (PRIMARY, FALLBACK))
        else:
            self.counts["disagreements"] += 1
            reason = (
                f"sources disagree: primary {value}, fallback {other} "
                f"(tolerance {self.config.tolerance}); value held"
            )
            log.warning("%s: %s: %s", self.name, message.query_id, reason)
            self._fail(message, _Failure(TRANSIENT, reason))

    def _answer(
        self, message: DataQuery, pages: _Pages, evaluation: Evaluation, sources: tuple[str, ...]
    ) -> None:
        self.counts["answered"] += 1
        answer = DataAnswer(
            query_id=message.query_id,
            responses=pages.pages,
            value=evaluation.value,
            sources=sources,
            evaluation=evaluation,
        )
        self.registry.tell(message.reply_to, answer)

    def _fail(self, message: DataQuery, failure: _Failure) -> None:
        self.counts["failed"] += 1
        self.registry.tell(
            message.reply_to,
            DataFailed(query_id=message.query_id, failure=failure.failure, reason=failure.reason),
        )

    # --- what GetState answers -------------------------------------------------------------

    def snapshot(self) -> Any:
        """Counters since this incarnation started; ``weight_in_window`` is the rolling minute's
        spend, ``weight_spent`` the total (a counter). Keys read by ``ops.metrics`` and
        ``ops.readiness``: requests, retries, weight_spent, breaker_open, breaker, reachable,
        cache_hits, cache_misses, coalesced, held."""
        now = self.clock.now()
        per_source = {source.name: source.snapshot(now) for source in self.sources}
        primary = per_source[PRIMARY]
        requests: dict[str, Counter[str]] = {}
        retries = 0
        for source in self.sources:
            stats = source.client.stats.snapshot()
            for (rtype, status), n in stats.requests.items():
                requests.setdefault(rtype, Counter())[status] += n
            retries += stats.retries
        return {
            "queries": self.counts["queries"],
            "answered": self.counts["answered"],
            "failed": self.counts["failed"],
            "coalesced": self.counts["coalesced"],
            "upstream_requests": sum(s["requests"] for s in per_source.values()),
            "cache_hits": self.counts["cache_hits"],
            "cache_misses": self.counts["cache_misses"],
            "cache_entries": len(self.cache),
            "weight_in_window": sum(s["weight_in_window"] for s in per_source.values()),
            "weight_spent": sum(s["weight_spent"] for s in per_source.values()),
            "queued": sum(s["queued"] for s in per_source.values()),
            "in_flight": self.in_flight,
            "ledger_writes": self.counts["ledger_writes"],
            "ledger_save_failures": self.counts["ledger_save_failures"],
            "fetches_in_flight": len(self.fetches),
            "breakers": {name: s["breaker"] for name, s in per_source.items()},
            "breaker": primary["breaker"],
            "breaker_open": int(primary["breaker"] == BreakerState.OPEN.value),
            "reachable": primary["breaker"] != BreakerState.OPEN.value,
            "disagreements": self.counts["disagreements"],
            "held": self.counts["disagreements"],
            "fallback_unavailable": self.counts["fallback_unavailable"],
            "requests": {rtype: dict(by_status) for rtype, by_status in requests.items()},
            "retries": retries,
            "sources": per_source,
        }


# --- what the actor keeps ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Config:
    """The actor's arguments, typed and checked (an unknown name is an error)."""

    weight_per_minute: int = 1200
    headroom_pct: float = 10.0
    live_ttl_s: float = 5.0
    tolerance: Decimal = Decimal(0)
    workers: int = 8
    breaker_failures: int = 5
    breaker_cooldown_s: float = 30.0
    closed_margin_s: float = 60.0
    queue_timeout_s: float = 120.0
    queue_limit: int = 10_000
    cache_entries: int = 10_000
    max_pages: int = 100

    @classmethod
    def from_args(cls, args: Any) -> _Config:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(args) - set(known))
        if unknown:
            raise ValueError(f"price_cache: unknown args {unknown}; known: {sorted(known)}")
        typed: dict[str, Any] = {}
        for name, value in args.items():
            default: Any = getattr(cls, name)
            typed[name] = Decimal(str(value)) if name == "tolerance" else type(default)(value)
        config = cls(**typed)
        if config.tolerance < 0 or config.workers < 1 or config.max_pages < 1:
            raise ValueError("price_cache: tolerance >= 0, workers >= 1 and max_pages >= 1")
        return config


@dataclass
class _Source:
    """One data source: its client, weight budget and breaker, and what it has done."""

    name: str
    client: HyperliquidClient
    budget: WeightBudget[_Job]
    breaker: CircuitBreaker
    baseline: int
    """The client's weight spent before this incarnation started."""
    timer_due: float | None = None
    counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def make(cls, name: str, client: HyperliquidClient, config: _Config) -> _Source:
        budget: WeightBudget[_Job] = WeightBudget.for_limit(
            config.weight_per_minute, config.headroom_pct, max_queue=config.queue_limit
        )
        breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)
        return cls(name, client, budget, breaker, client.stats.snapshot().weight_spent)

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "url": self.client.url,
            "requests": self.counts["requests"],
            "failures": self.counts["failures"],
            "coalesced": self.counts["coalesced"],
            "weight_in_window": self.budget.spent(now),
            "weight_capacity": self.budget.capacity,
            "weight_spent": self.budget.charged_total,
            "queued": len(self.budget),
            "breaker": self.breaker.state(now).value,
            "breaker_opened": self.breaker.opened,
        }


@dataclass(frozen=True)
class _Failure:
    failure: FailureClass
    reason: str
    counts: bool = False
    """Whether the source's breaker counts it (transient errors of the source itself)."""

    @classmethod
    def of_evaluation(cls, exc: EvaluationError) -> _Failure:
        return cls(PERMANENT if exc.permanent else TRANSIENT, exc.reason)


@dataclass(eq=False)
class _Pages:
    """A source's pages for one plan (every query sharing the fetch shares this object), and
    the values already computed from them."""

    pages: tuple[RawResponse, ...]
    values: dict[tuple[Subject, Window, OracleSpec], Decimal | _Failure] = field(
        default_factory=dict
    )
    last: tuple[MarketSpec, Evaluation | _Failure] | None = None

    def value(self, spec: MarketSpec) -> Decimal | _Failure:
        """``evaluate(spec, pages).value``, or the failure it raises; computed once per subject,
        window and rounding: the predicate and the title do not change the value."""
        key = (spec.subject, spec.window, spec.oracle)
        found = self.values.get(key)
        if found is None:
            evaluated = self.evaluation(spec)
            found = evaluated if isinstance(evaluated, _Failure) else evaluated.value
        return found

    def evaluation(self, spec: MarketSpec) -> Evaluation | _Failure:
        """``evaluate(spec, pages)`` (the answer carries it: the resolver need not evaluate
        again), or the failure it raises; the last one is kept, since a query asks twice."""
        last = self.last
        if last is not None and last[0] is spec:
            return last[1]
        try:
            found: Evaluation | _Failure = evaluate(spec, self.pages)
        except EvaluationError as exc:
            found = _Failure.of_evaluation(exc)
        self.values[(spec.subject, spec.window, spec.oracle)] = (
            found if isinstance(found, _Failure) else found.value
        )
        self.last = (spec, found)
        return found


def ledger_key(url: str) -> bytes:
    """Where the weight ledger of the source at ``url`` (its client's URL) is kept in ``meta``."""
    return f"price_cache.weight.{url}".encode()


_Outcome = _Pages | _Failure
_FetchKey = tuple[str, tuple[str, ...]]


@dataclass(eq=False)
class _Series:
    """The pages of one planned request, followed with ``next_page``."""

    first: InfoRequest
    pages: list[RawResponse] = field(default_factory=list)
    asked: set[str] = field(default_factory=set)
    done: bool = False


@dataclass(eq=False)
class _Fetch:
    """One source's pages for one plan, shared by every query with the same plan."""

    key: _FetchKey
    source: _Source
    series: list[_Series]
    waiters: list[_Query] = field(default_factory=list)
    outcome: _Outcome | None = None

    def all_done(self) -> bool:
        return all(series.done for series in self.series)

    def pages(self) -> _Pages:
        """Every series' pages, in plan order: exactly what the value is computed from."""
        return _Pages(tuple(page for series in self.series for page in series.pages))


@dataclass(frozen=True, eq=False)
class _Job:
    """One page to fetch: queued in the budget, then run on the pool."""

    fetch: _Fetch
    series: _Series
    request: InfoRequest


@dataclass(eq=False)
class _Query:
    """One ``DataQuery`` waiting for its sources' outcomes."""

    message: DataQuery
    expected: int
    results: dict[str, _Outcome] = field(default_factory=dict)
    decided: bool = False


class _Cache:
    """Series pages by (source, first request); LRU-bounded; each entry expires (maybe at inf)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[tuple[RawResponse, ...], float]]
        self._entries = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, key: tuple[str, str], now: float, not_before_ms: int
    ) -> tuple[RawResponse, ...] | None:
        """The pages, if present, not expired and fetched at or after ``not_before_ms`` (the
        window's end: a page fetched earlier cannot speak for the window)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        pages, expires = entry
        if now >= expires:
            del self._entries[key]
            return None
        if min(page.fetched_at_ms for page in pages) < not_before_ms:
            return None
        self._entries.move_to_end(key)
        return pages

    def put(self, key: tuple[str, str], pages: tuple[RawResponse, ...], expires: float) -> None:
        self._entries[key] = (pages, expires)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


# --- off the actor thread -------------------------------------------------------------------


def _fetch_page(source: _Source, job: _Job, ticket: Ticket, reply: pykka.ActorRef[Any]) -> None:
    """Run on the pool: one ``client.fetch``, reported to the actor whatever happens."""
    page: RawResponse | None = None
    failure: _Failure | None = None
    try:
        page = source.client.fetch(job.request)
    except TransientSourceError as exc:
        failure = _Failure(TRANSIENT, f"{source.name}: {exc}", counts=True)
    except MalformedResponse as exc:  # a cut body or a proxy's error page passes (ADR 0012)
        failure = _Failure(TRANSIENT, f"{source.name}: {exc}")
    except PermanentSourceError as exc:
        failure = _Failure(PERMANENT, f"{source.name}: {exc}")
    except Exception as exc:  # anything else still has to come back, or the slot is lost
        failure = _Failure(TRANSIENT, f"{source.name}: {type(exc).__name__}: {exc}", counts=True)
    spent = source.client.stats.snapshot().weight_spent
    done = _PageDone(source.name, job, ticket, page, failure, spent)
    with contextlib.suppress(pykka.ActorDeadError):
        reply.tell(done)


# --- small pure helpers ---------------------------------------------------------------------


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _item_weight(page: RawResponse) -> int:
    """The per-item part of a page's weight (its base was charged when it was admitted)."""
    rtype = page.request.type
    return response_weight(rtype, page.status, page.body) - base_weight(rtype)


def _next_page(request: InfoRequest, body: bytes) -> InfoRequest | None:
    """``next_page``, except that a page it cannot read ends the series: ``evaluate`` then says
    precisely what is wrong with it."""
    try:
        return next_page(request, body)
    except EvaluationError:
        return None


def _history_end_ms(request: InfoRequest) -> int | None:
    """The ``endTime`` of a time-range request, or None (live data, or no end given)."""
    if request.type not in HISTORY_TYPES:
        return None
    params = request.body.get("req") if request.type == "candleSnapshot" else request.body
    end = params.get("endTime") if isinstance(params, dict) else None
    return end if isinstance(end, int) and not isinstance(end, bool) else None


def _agree(a: Decimal, b: Decimal, tolerance: Decimal) -> bool:
    """``|a - b| <= tolerance * max(|a|, |b|)``, computed exactly."""
    with localcontext() as ctx:
        ctx.prec = 200
        return abs(a - b) <= tolerance * max(abs(a), abs(b))
