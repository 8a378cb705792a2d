"""Paging by startTime: every row exactly once, no endless loop, a bound on pages."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sources.hl_paging import page_by_time
from sources.http_errors import PagingError

pytestmark = pytest.mark.timeout(60)

Row = tuple[int, int]  # (time, payload); identical rows are legal and must stay distinct
Fetch = Callable[[int], tuple[list[Row], None]]


def api(rows: list[Row], cap: int, end: int) -> tuple[list[int], Fetch]:
    """A capped API over ``rows``: the first ``cap`` rows with start <= time <= end."""
    calls: list[int] = []

    def fetch(start: int) -> tuple[list[Row], None]:
        calls.append(start)
        return [r for r in sorted(rows) if start <= r[0] <= end][:cap], None

    return calls, fetch


def walk(
    fetch: Fetch,
    cap: int,
    end: int,
    restart_after: Callable[[Row], int] | None = None,
    max_pages: int = 100,
) -> list[Row]:
    rows, _ = page_by_time(
        fetch,
        start_ms=0,
        end_ms=end,
        cap=cap,
        time_of=lambda r: r[0],
        key_of=lambda r: r,
        restart_after=restart_after,
        request_type="fundingHistory",
        max_pages=max_pages,
    )
    return rows


@settings(max_examples=200, deadline=None)
@given(
    times=st.lists(st.integers(0, 60), min_size=0, max_size=120),
    cap=st.integers(3, 12),
    payload_kinds=st.integers(1, 3),
    data=st.data(),
)
def test_every_row_exactly_once_across_straddling_pages(
    times: list[int], cap: int, payload_kinds: int, data: st.DataObject
) -> None:
    rows = [(t, data.draw(st.integers(0, payload_kinds - 1))) for t in times]
    per_time = Counter(t for t, _ in rows)
    _, fetch = api(rows, cap, end=60)
    if per_time and max(per_time.values()) >= cap:
        # a full page of one timestamp may be unreachable past: an error, never a loop
        try:
            got = walk(fetch, cap, 60)
        except PagingError:
            return
    else:
        got = walk(fetch, cap, 60)
    assert Counter(got) == Counter(rows)


def test_a_full_page_of_one_timestamp_is_an_error_not_a_loop() -> None:
    calls, fetch = api([(5, i) for i in range(10)], cap=4, end=100)
    with pytest.raises(PagingError, match=r"^fundingHistory: paging does not advance"):
        walk(fetch, 4, 100)
    assert calls == [0, 5]


def test_pages_are_bounded() -> None:
    _, fetch = api([(t, 0) for t in range(100)], cap=2, end=1000)
    with pytest.raises(PagingError, match="within 10 pages"):
        walk(fetch, 2, 1000, restart_after=lambda r: r[0] + 1, max_pages=10)


def test_stops_when_the_window_is_covered() -> None:
    calls, fetch = api([(t, 0) for t in range(0, 100, 10)], cap=2, end=30)
    assert walk(fetch, 2, 30, restart_after=lambda r: r[0] + 10) == [
        (0, 0),
        (10, 0),
        (20, 0),
        (30, 0),
    ]
    assert calls == [0, 20]
