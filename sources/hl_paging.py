"""Paging a capped, time-ordered Hyperliquid response by advancing ``startTime``.

A capped type (``PAGE_CAPS``) answers at most ``cap`` rows from ``startTime`` on. ``page_by_time``
asks again from where the last page ended until the window is covered or a page comes back short.

Rows sharing one timestamp may straddle a page boundary (several fills of one order, say), so for
fills and funding the next page starts *at* the last row's time, and the rows of that time already
held are dropped from it (as a multiset: two identical rows stay two). Candles have one row per
open time, so the next page starts past the last candle's close time ``T``. A page that cannot
advance (a full page of one timestamp) and a walk longer than ``max_pages`` are ``PagingError``,
never a loop::

    >>> pages = {0: [1, 2, 2], 2: [2, 2, 3], 3: [3]}
    >>> rows, _ = page_by_time(
    ...     lambda start: (pages[start], None), start_ms=0, end_ms=10, cap=3,
    ...     time_of=lambda r: r, key_of=str, restart_after=None, request_type="demo")
    >>> rows
    [1, 2, 2, 3]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from typing import TypeVar

from sources.http_errors import PagingError

Row = TypeVar("Row")
Page = TypeVar("Page")


def page_by_time(
    fetch_page: Callable[[int], tuple[list[Row], Page]],
    *,
    start_ms: int,
    end_ms: int,
    cap: int,
    time_of: Callable[[Row], int],
    key_of: Callable[[Row], Hashable],
    restart_after: Callable[[Row], int] | None,
    request_type: str,
    max_pages: int = 100,
) -> tuple[list[Row], list[Page]]:
    """Fetch pages from ``start_ms`` until ``end_ms`` is covered; every row once, in page order.

    ``restart_after(row)`` gives the next ``startTime`` after the page's latest row (candles:
    ``T + 1``); None means "restart at the latest row's time and drop the overlap".
    """
    rows: list[Row] = []
    pages: list[Page] = []
    cursor = start_ms
    held_at_cursor: Counter[Hashable] = Counter()
    for _ in range(max_pages):
        page_rows, page = fetch_page(cursor)
        pages.append(page)
        for row in page_rows:
            key = key_of(row)
            if time_of(row) == cursor and held_at_cursor[key] > 0:
                held_at_cursor[key] -= 1
                continue
            rows.append(row)
        if len(page_rows) < cap:
            return rows, pages
        latest = max(page_rows, key=time_of)
        next_cursor = restart_after(latest) if restart_after else time_of(latest)
        if next_cursor > end_ms:
            return rows, pages
        if next_cursor <= cursor:
            raise PagingError(
                request_type,
                f"paging does not advance: a full page of {cap} rows ends at startTime {cursor}",
            )
        cursor = next_cursor
        held_at_cursor = Counter(key_of(r) for r in rows if time_of(r) == cursor)
    raise PagingError(request_type, f"paging did not finish within {max_pages} pages")
