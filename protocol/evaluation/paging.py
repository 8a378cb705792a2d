"""Paged responses: the follow-up request of a full page, and stitching pages back into one series.

The client asks ``plan``'s requests, then follows ``next_page`` until it returns ``None``::

    >>> from protocol.hyperliquid import InfoRequest
    >>> req = InfoRequest(body={"type": "fundingHistory", "coin": "BTC", "startTime": 0,
    ...                         "endTime": 10_000})
    >>> next_page(req, b"[]") is None
    True

A page is *full* when it holds ``PAGE_CAPS[type]`` rows or more. The follow-up of a full page:

* candleSnapshot: ``startTime`` = the last candle's ``T`` + 1 (the next candle's open);
* fundingHistory: ``startTime`` = the last row's ``time`` + 1 (one row per instant and coin);
* userFillsByTime: ``startTime`` = the last row's ``time``: several fills share a millisecond and
  the cap may cut through them, so that millisecond is asked again and only the later page is used.

``None`` when the page is not full, when ``endTime`` is passed, or when the page made no progress
(a full page of fills all at ``startTime``: ``evaluate`` then reports the page cap).

``stitch`` walks pages in ``startTime`` order with a cursor from the window start: each page
contributes the rows it covers beyond the cursor (a full page covers up to its last row, or up to
the millisecond before it for fills; a partial page up to ``endTime`` and the millisecond before its
fetch time). A page that starts after the cursor leaves a gap (transient); coverage that stops
before the window end is a permanent failure when a full page stopped it (page cap hit, rows
missing) and transient otherwise (fetched too early, request too short).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from protocol.evaluation.errors import permanent, transient
from protocol.evaluation.jsonbody import describe, loads
from protocol.evaluation.rows import row_times
from protocol.evaluation.timebase import Span
from protocol.hyperliquid import PAGE_CAPS, InfoRequest

REPEATS_BOUNDARY = frozenset({"userFillsByTime"})
"""Types whose rows can share a millisecond: the next page repeats the last row's millisecond."""


class Timed(Protocol):
    @property
    def time(self) -> int: ...


R = TypeVar("R", bound=Timed)


def params_of(request: InfoRequest) -> Mapping[str, Any]:
    """Where a request keeps its time range: ``req`` for candleSnapshot, the body otherwise."""
    if request.type == "candleSnapshot":
        req = request.body.get("req")
        if not isinstance(req, dict):
            raise transient(f"request {describe(request)} has no req object")
        return req
    return request.body


def int_param(request: InfoRequest, key: str) -> int:
    """A request's integer time parameter, e.g. ``startTime``."""
    value = params_of(request).get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise transient(f"request {describe(request)}: {key} is not an integer")
    return value


def optional_int_param(request: InfoRequest, key: str) -> int | None:
    """Like ``int_param``, but a missing parameter is ``None``."""
    return None if params_of(request).get(key) is None else int_param(request, key)


def next_page(request: InfoRequest, response_body: bytes) -> InfoRequest | None:
    """The request for the page after ``response_body``, or ``None`` when nothing is left to ask."""
    cap = PAGE_CAPS.get(request.type)
    if cap is None:
        return None
    where = describe(request)
    times = row_times(request.type, loads(response_body, where), where)
    if len(times) < cap:
        return None
    start = int_param(request, "startTime")
    end = optional_int_param(request, "endTime")
    following = max(times) + (0 if request.type in REPEATS_BOUNDARY else 1)
    if following <= start:
        return None
    if end is not None and following > end:
        return None
    params = {**params_of(request), "startTime": following}
    if request.type == "candleSnapshot":
        return InfoRequest(body={**request.body, "req": params})
    return InfoRequest(body=params)


@dataclass(frozen=True)
class Page(Generic[R]):
    """One parsed page of a paged series."""

    where: str
    start_ms: int
    end_ms: int | None
    fetched_at_ms: int
    full: bool
    rows: tuple[R, ...]
    repeats_boundary: bool

    def covered_until(self) -> tuple[int, str]:
        """The last millisecond this page vouches for, and what limits it."""
        bounds: list[tuple[int, str]] = [(self.fetched_at_ms - 1, "fetched")]
        if self.end_ms is not None:
            bounds.append((self.end_ms, "end"))
        if self.full and self.rows:
            last = max(r.time for r in self.rows)
            bounds.append((last - 1 if self.repeats_boundary else last, "cap"))
        return min(bounds)


def make_page(
    request: InfoRequest, fetched_at_ms: int, rows: Sequence[R], *, request_type: str
) -> Page[R]:
    return Page(
        where=describe(request),
        start_ms=int_param(request, "startTime"),
        end_ms=optional_int_param(request, "endTime"),
        fetched_at_ms=fetched_at_ms,
        full=len(rows) >= PAGE_CAPS[request_type],
        rows=tuple(rows),
        repeats_boundary=request_type in REPEATS_BOUNDARY,
    )


def stitch(pages: Sequence[Page[R]], span: Span, what: str) -> list[R]:
    """Every row the pages vouch for from ``span.start_ms`` on, each once, oldest page first."""
    if not pages:
        raise transient(f"no {what} responses")
    cursor = span.start_ms
    out: list[R] = []
    limit: tuple[Page[R], str] | None = None
    for page in sorted(pages, key=lambda p: p.start_ms):
        if page.start_ms > cursor:
            if cursor < span.end_ms:
                raise transient(
                    f"{what} responses leave [{cursor}, {page.start_ms}) uncovered "
                    f"(next response: {page.where})"
                )
            break
        until, why = page.covered_until()
        if until >= cursor:
            out.extend(r for r in page.rows if cursor <= r.time <= until)
            cursor = until + 1
            limit = (page, why)
    if cursor < span.end_ms:
        _shortfall(limit, cursor, span, what)
    return out


def _shortfall(limit: tuple[Page[R], str] | None, cursor: int, span: Span, what: str) -> None:
    if limit is None:
        raise transient(f"no {what} response covers the window start {span.start_ms}")
    page, why = limit
    if why == "cap":
        raise permanent(
            f"page cap hit: the response to {page.where} is full ({len(page.rows)} rows); "
            f"{what} rows from {cursor} to the window end {span.end_ms} are missing"
        )
    if why == "fetched":
        raise transient(
            f"the response to {page.where} was fetched at {page.fetched_at_ms}, "
            f"before the window end {span.end_ms}"
        )
    raise transient(
        f"the request {page.where} ends at {page.end_ms}, before the window end {span.end_ms}"
    )
