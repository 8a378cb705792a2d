"""Hyperliquid info API client: ``POST {base_url}/info``, sync, safe to share between threads.

Every request has a timeout; transient failures (connect errors, timeouts, 5xx, 429) are retried
with full-jitter backoff within a budget, then raise ``TransientSourceError``; a 4xx or a malformed
body raises ``PermanentSourceError`` / ``MalformedResponse`` naming the request type::

    with HyperliquidClient("http://127.0.0.1:8080") as hl:
        mids = hl.all_mids()                                  # {"BTC": Decimal("30135.0"), ...}
        candles = hl.candle_snapshot("BTC", "1h", t0_ms, t1_ms)   # paged past the 5000 cap
        raw = hl.fetch(InfoRequest(body={"type": "meta"}))    # exact bytes, URL, time, status
        pages = hl.fetch_pages(request, next_page)            # paging chosen by the evaluator
        hl.stats.snapshot().weight_spent

Typed methods return pydantic models from ``sources.hl_models`` (decimal strings as ``Decimal``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import TypeAdapter

from protocol.hyperliquid import PAGE_CAPS, InfoRequest, RawResponse
from sources.bounded_post import bounded_post
from sources.hl_models import (
    ALL_MIDS,
    CANDLES,
    CLEARINGHOUSE_STATE,
    FILLS,
    FUNDING_ROWS,
    L2_BOOK,
    META,
    META_AND_ASSET_CTXS,
    Candle,
    ClearinghouseState,
    Fill,
    FundingRow,
    L2Book,
    Meta,
    MetaAndAssetCtxs,
    load_json,
    validate,
)
from sources.hl_paging import page_by_time
from sources.hl_retry import RetryPolicy, parse_retry_after
from sources.hl_stats import SourceStats
from sources.hl_weights import response_weight
from sources.http_errors import (
    MalformedResponse,
    PagingError,
    PermanentSourceError,
    TransientSourceError,
)

T = TypeVar("T")

MAINNET_URL = "https://api.hyperliquid.xyz"

NextPage = Callable[[InfoRequest, bytes], InfoRequest | None]
"""Given a request and its page's bytes: the request for the next page, or None when done."""

_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each phase of one HTTP attempt."""

    connect_s: float = 5.0
    read_s: float = 10.0
    write_s: float = 5.0
    pool_s: float = 5.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.connect_s, read=self.read_s, write=self.write_s, pool=self.pool_s
        )


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class HyperliquidClient:
    """Typed and raw access to ``POST /info`` with timeouts, retries, paging and weight counting.

    ``transport`` (e.g. ``httpx.HTTPTransport(retries=0)``), ``sleep``, ``monotonic``, ``clock_ms``
    and ``rng`` are injectable for tests; ``headers`` are sent with every request.
    """

    def __init__(
        self,
        base_url: str = MAINNET_URL,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_pages: int = 100,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        clock_ms: Callable[[], int] = _wall_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/info"
        self.retry = retry or RetryPolicy()
        self.max_pages = max_pages
        self.stats = SourceStats()
        self._sleep = sleep
        self._monotonic = monotonic
        self._clock_ms = clock_ms
        self._rng = rng or random.Random()
        phases = timeouts or Timeouts()
        self._deadline_s = phases.connect_s + phases.write_s + phases.read_s
        """One attempt's whole answer (``bounded_post``): its phases' timeouts end to end."""
        self._http = httpx.Client(
            timeout=phases.to_httpx(),
            transport=transport,
            headers={"Content-Type": "application/json", **(headers or {})},
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HyperliquidClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- raw -------------------------------------------------------------------------------

    def fetch(self, request: InfoRequest) -> RawResponse:
        """One request, retried within budget; the 2xx page as received (its body is valid JSON)."""
        return self._fetch(request)[0]

    def fetch_pages(self, request: InfoRequest, next_page: NextPage) -> list[RawResponse]:
        """Fetch ``request`` and then whatever ``next_page`` asks for, until it returns None.

        A repeated request (paging that does not advance) or more than ``max_pages`` pages is a
        ``PagingError``.
        """
        pages: list[RawResponse] = []
        seen: set[str] = set()
        current: InfoRequest | None = request
        while current is not None:
            key = current.cache_key()
            if key in seen:
                raise PagingError(current.type, f"paging does not advance: {key} asked twice")
            if len(pages) >= self.max_pages:
                raise PagingError(request.type, f"paging did not finish in {self.max_pages} pages")
            seen.add(key)
            page = self.fetch(current)
            pages.append(page)
            current = next_page(current, page.body)
        return pages

    def _fetch(self, request: InfoRequest) -> tuple[RawResponse, Any]:
        rtype = request.type or "<no type>"
        content = json.dumps(request.body, separators=(",", ":")).encode()
        started = self._monotonic()
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            weight = 0
            try:
                resp = bounded_post(
                    self._http, self.url, deadline_s=self._deadline_s, content=content
                )
            except _TRANSIENT as exc:
                outcome, failure = "error", f"{type(exc).__name__}: {exc}"
            except httpx.DecodingError as exc:
                self.stats.record(rtype, "error", weight=0)
                raise MalformedResponse(rtype, f"body could not be decoded: {exc}") from None
            except httpx.HTTPError as exc:
                self.stats.record(rtype, "error", weight=0)
                raise PermanentSourceError(rtype, f"request failed: {exc!r}") from None
            else:
                status, body = resp.status, resp.body
                outcome, weight = str(status), response_weight(rtype, status, body)
                if 200 <= status < 300:
                    self.stats.record(rtype, outcome, weight=weight)
                    payload = load_json(rtype, body)
                    raw = RawResponse(
                        request=request,
                        url=self.url,
                        fetched_at_ms=self._clock_ms(),
                        status=status,
                        body=body,
                    )
                    return raw, payload
                if status != 429 and status < 500:
                    self.stats.record(rtype, outcome, weight=weight)
                    excerpt = body[:200].decode("utf-8", "replace")
                    raise PermanentSourceError(rtype, f"HTTP {status}: {excerpt}", status=status)
                failure = f"HTTP {status}"
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            elapsed = self._monotonic() - started
            wait = self.retry.delay(attempt, self._rng, retry_after)
            if attempt >= self.retry.max_attempts or elapsed + wait > self.retry.max_total_s:
                self.stats.record(rtype, outcome, weight=weight)
                raise TransientSourceError(
                    rtype,
                    f"gave up after {attempt} attempts in {elapsed:.2f}s; last: {failure}",
                    attempts=attempt,
                )
            self.stats.record(rtype, outcome, weight=weight, retried=True)
            self._sleep(wait)

    def _typed(self, body: dict[str, Any], shape: TypeAdapter[T]) -> T:
        request = InfoRequest(body=body)
        _, payload = self._fetch(request)
        return validate(request.type, payload, shape)

    # -- typed -----------------------------------------------------------------------------

    def meta(self) -> Meta:
        return self._typed({"type": "meta"}, META)

    def meta_and_asset_ctxs(self) -> MetaAndAssetCtxs:
        return self._typed({"type": "metaAndAssetCtxs"}, META_AND_ASSET_CTXS)

    def all_mids(self) -> dict[str, Decimal]:
        """Mid price of every coin."""
        return self._typed({"type": "allMids"}, ALL_MIDS)

    def l2_book(self, coin: str) -> L2Book | None:
        """The book of ``coin``; None when the API answers ``null`` (an unknown coin)."""
        return self._typed({"type": "l2Book", "coin": coin}, L2_BOOK)

    def clearinghouse_state(self, user: str) -> ClearinghouseState:
        body = {"type": "clearinghouseState", "user": user.lower()}
        return self._typed(body, CLEARINGHOUSE_STATE)

    def user_fills(self, user: str) -> list[Fill]:
        """The user's most recent fills (the API returns at most 2000), newest first."""
        return self._typed({"type": "userFills", "user": user.lower()}, FILLS)

    def candle_snapshot(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Candle]:
        """Candles of ``coin`` overlapping ``[start_ms, end_ms]``, oldest first, paged past 5000."""
        rtype = "candleSnapshot"

        def page(start: int) -> tuple[list[Candle], RawResponse]:
            req = {"coin": coin, "interval": interval, "startTime": start, "endTime": end_ms}
            raw, payload = self._fetch(InfoRequest(body={"type": rtype, "req": req}))
            rows: list[Candle] = validate(rtype, payload, CANDLES)
            for row in rows:
                if row.coin != coin or row.interval != interval:
                    raise MalformedResponse(
                        rtype, f"asked {coin} {interval}, got a {row.coin} {row.interval} candle"
                    )
            return rows, raw

        rows, _ = page_by_time(
            page,
            start_ms=start_ms,
            end_ms=end_ms,
            cap=PAGE_CAPS[rtype],
            time_of=lambda c: c.open_time,
            key_of=lambda c: c.open_time,
            restart_after=lambda c: c.close_time + 1,
            request_type=rtype,
            max_pages=self.max_pages,
        )
        return rows

    def funding_history(self, coin: str, start_ms: int, end_ms: int) -> list[FundingRow]:
        """Funding rows of ``coin`` with time in ``[start_ms, end_ms]``, oldest first, paged."""
        rtype = "fundingHistory"

        def page(start: int) -> tuple[list[FundingRow], RawResponse]:
            body = {"type": rtype, "coin": coin, "startTime": start, "endTime": end_ms}
            raw, payload = self._fetch(InfoRequest(body=body))
            rows: list[FundingRow] = validate(rtype, payload, FUNDING_ROWS)
            for row in rows:
                if row.coin != coin:
                    raise MalformedResponse(rtype, f"asked {coin}, got a {row.coin} row")
            return rows, raw

        rows = self._page_rows(page, rtype, start_ms, end_ms)
        return sorted(rows, key=lambda r: r.time)

    def user_fills_by_time(self, user: str, start_ms: int, end_ms: int) -> list[Fill]:
        """The user's fills with time in ``[start_ms, end_ms]``, oldest first, paged past 2000."""
        rtype = "userFillsByTime"

        def page(start: int) -> tuple[list[Fill], RawResponse]:
            body = {"type": rtype, "user": user.lower(), "startTime": start, "endTime": end_ms}
            raw, payload = self._fetch(InfoRequest(body=body))
            return validate(rtype, payload, FILLS), raw

        rows = self._page_rows(page, rtype, start_ms, end_ms)
        return sorted(rows, key=lambda r: r.time)

    def _page_rows(
        self,
        page: Callable[[int], tuple[list[Any], RawResponse]],
        rtype: str,
        start_ms: int,
        end_ms: int,
    ) -> list[Any]:
        rows, _ = page_by_time(
            page,
            start_ms=start_ms,
            end_ms=end_ms,
            cap=PAGE_CAPS[rtype],
            time_of=lambda r: r.time,
            key_of=lambda r: r,
            restart_after=None,
            request_type=rtype,
            max_pages=self.max_pages,
        )
        return rows
