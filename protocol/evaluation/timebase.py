"""The one place where chain time (seconds) becomes Hyperliquid time (milliseconds).

    >>> from protocol.spec import Window, WindowKind
    >>> span_of(Window(kind=WindowKind.WINDOW_SUM, t_start=60, t_end=120))
    Span(start_ms=60000, end_ms=120000)

Every later step works on a ``Span``: the half-open range ``[start_ms, end_ms)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.spec import Window

MS_PER_SECOND = 1000
MINUTE_MS = 60 * MS_PER_SECOND
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def to_ms(seconds: int) -> int:
    """Chain seconds to Hyperliquid milliseconds: ``to_ms(2) == 2000``."""
    return seconds * MS_PER_SECOND


@dataclass(frozen=True)
class Span:
    """A half-open range of Hyperliquid milliseconds ``[start_ms, end_ms)``."""

    start_ms: int
    end_ms: int

    def __contains__(self, ms: int) -> bool:
        return self.start_ms <= ms < self.end_ms

    def text(self) -> str:
        """``[start, end)`` for messages."""
        return f"[{self.start_ms}, {self.end_ms})"


def span_of(window: Window) -> Span:
    """The window in milliseconds (a SNAPSHOT_AT window keeps both; only ``end_ms`` is used)."""
    return Span(to_ms(window.t_start), to_ms(window.t_end))
